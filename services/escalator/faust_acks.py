"""Faust must not count a command as done when it only skipped it during a rebalance.

faust-streaming (0.15.3) acknowledges a message a stream takes while the flow is paused for a
rebalance, or one fetched in an older consumer generation, as "skipped" (`faust/streams.py`), and
keeps the acknowledged offsets of a partition the worker holds through the rebalance; the next
commit then moves past commands that were never applied (`escalation chaos` lost up to 133 per run,
see docs/reliability.md). Here an acknowledgement during a rebalance, or of an older generation,
releases the message (nothing waits for it any more) without advancing the committed offset: after
the rebalance the commands are read again. A command that had been applied is then ignored by the
escalator's redelivery guard (its offset is at or below the incident's stored offset); one that had
been skipped is applied.

That alone still lost commands when a worker joined or left under load: Faust handed over commands
fetched before a seek, then dropped the re-read ones behind its read offset. So after every
rebalance the partitions of incidents.commands are sought to the escalator's own applied positions
(`positions.py`), kept in its state table (Faust's committed offsets only serve a partition without
one), and the escalator applies commands strictly in offset order, seeking back over a gap
(`reposition`) and letting go of what it skips (`release`). See docs/reliability.md, finding 1.
"""

from __future__ import annotations

from typing import Any, Protocol

from faust.transport.consumer import Consumer
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from shared.topics import INCIDENT_COMMANDS

_faust_ack = Consumer.ack


def _ack(self: Any, message: Any) -> bool:
    app = self.app
    if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
        result: bool = _faust_ack(self, message)
        return result
    release(self, message)
    return False


_faust_perform_seek = Consumer.perform_seek


class SeekTarget(Protocol):
    """Where the escalator wants each partition of incidents.commands read from after a rebalance."""

    def resume_offset(self, partition: int) -> int | None:
        """Its own applied position of `partition`, or None when it has none (yet)."""

    def sought(self, partition: int, offset: int) -> None:
        """The consumer was positioned at `offset`."""


_target: SeekTarget | None = None


async def _perform_seek(self: Any) -> None:
    """Seek every partition of incidents.commands to the escalator's own applied position.

    Faust seeks to the committed offsets, which may lie past commands that were skipped and never
    applied (see the module's docstring); the escalator's position (`positions.py`) never does.
    Without one (a new deployment, or the table of a partition not recovered yet: Faust seeks again
    after recovery), the committed offset, and a partition with none to its start: aiokafka's
    `seek_to_committed` only seeks where an offset above 0 was committed, so such a partition kept
    its fetch position, past the commands the rebalance dropped from Faust's buffers (seen at a
    fresh group's first rebalance: offsets 0-2 of the partitions a worker kept, never applied).
    """
    await _faust_perform_seek(self)
    target = _target
    for tp in self.assignment():
        if tp.topic != INCIDENT_COMMANDS:
            continue
        offset = target.resume_offset(tp.partition) if target is not None else None
        if offset is None:
            offset = self._committed_offset.get(tp) or 0
        await reposition(self, tp, offset)
        if target is not None:
            target.sought(tp.partition, offset)


async def reposition(consumer: Any, tp: Any, offset: int, *, while_fetching: bool = False) -> None:
    """Seek a partition to `offset`, and start Faust's commit bookkeeping of it over from there.

    With the committed offset Faust remembered (often behind the position, as it commits every half
    second) it took the first offset acknowledged after the seek for a gap and never committed that
    partition again.

    `while_fetching`: a seek outside a rebalance (back over a gap) runs on Faust's consumer thread,
    between two of its fetches. Made from this thread it raced aiokafka's `fetched_records` on that
    one, which died on the partition's dropped records (`KeyError` in `del self._records[tp]`), and
    the worker read nothing more (seen once in tests/integration/test_escalator_resilience.py).
    During a rebalance that thread waits for this one, so the seek is made from here, as Faust does.
    """
    thread = getattr(consumer, "_thread", None)
    if while_fetching and thread is not None:
        await thread.call_thread(thread.seek, tp, offset)
        consumer._read_offset[tp] = offset if offset else None  # what Faust's own seek sets too
    else:
        await consumer.seek(tp, offset)
    consumer._committed_offset[tp] = offset if offset else None
    consumer._acked.pop(tp, None)
    consumer._acked_index.pop(tp, None)
    consumer._gap.pop(tp, None)


def release(consumer: Any, message: Any) -> None:
    """Let go of a message the escalator skips (a repeat, or one past a gap) without acknowledging it:
    nothing waits for it any more and Faust does not count its offset for the next commit."""
    with ack_lock:
        if not message.acked:
            message.acked = True
            consumer._unacked_messages.discard(message)
            notify(consumer._waiting_for_ack)


def install(target: SeekTarget | None = None) -> None:
    """Replace Faust's consumer acknowledgement and seek with the ones above (idempotent)."""
    global _target
    _target = target
    Consumer.ack = _ack  # type: ignore[method-assign]
    Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
