"""Keep Python's cyclic garbage collector off the hot path of a long-running service process."""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Freeze what the process built to start, and collect the young generation rarely.

    What a service builds to start (modules, the app, pydantic's validators: about 70,000 objects)
    lives as long as the process, yet every full collection walked it: 50 ms pauses, a tenth of the
    intake's CPU under load (bench/intake.py). It is frozen out of the collector's view after one
    last collection. A request's or an event's objects die by reference counting; with the young
    generation collected every 700 net allocations, those in flight were promoted and collected
    again and again; at 20,000 a collection is rare. Only for service processes (the intake's and
    the notifier's `serving` apps): frozen objects that become garbage in cycles are never
    collected, which a test process building many apps would feel.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
