"""In-memory index of the pending deadlines of the partitions this worker owns."""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DueTimer:
    """A deadline that has come: fire it as a `timer.fired` command."""

    key: str
    token: int
    due_at: float
    partition: int


class TimerIndex:
    """A heap of deadlines with lazy deletion: one live timer per incident key.

    The durable copy of every deadline lives in the incident state table; this index is only a
    fast way to find the next one and is rebuilt from the table after every rebalance.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, str, int]] = []
        self._live: dict[str, tuple[int, float, int]] = {}  # key -> (token, due_at, partition)

    def __len__(self) -> int:
        return len(self._live)

    def arm(self, key: str, due_at: float, token: int, partition: int) -> None:
        """Set the live deadline of `key`, replacing any earlier one."""
        self._live[key] = (token, due_at, partition)
        heapq.heappush(self._heap, (due_at, key, token))
        if len(self._heap) > 2 * len(self._live) + 1024:
            self._compact()

    def restore(self, timer: DueTimer) -> None:
        """Put back a popped deadline whose firing failed, unless a newer one was armed since."""
        if timer.key not in self._live:
            self.arm(timer.key, timer.due_at, timer.token, timer.partition)

    def disarm(self, key: str) -> None:
        """Forget the deadline of `key`."""
        self._live.pop(key, None)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget every deadline of the given partitions (they moved to another worker)."""
        for key in [k for k, (_, _, p) in self._live.items() if p in partitions]:
            del self._live[key]

    def clear(self) -> None:
        """Forget everything."""
        self._heap.clear()
        self._live.clear()

    def next_due(self) -> float | None:
        """Return the earliest live deadline, or None."""
        self._skip_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, limit: int = 10_000) -> list[DueTimer]:
        """Remove and return up to `limit` live deadlines at or before `now`, earliest first."""
        out: list[DueTimer] = []
        while self._heap and len(out) < limit:
            due_at, key, token = self._heap[0]
            live = self._live.get(key)
            if live is None or live[0] != token or live[1] != due_at:
                heapq.heappop(self._heap)
                continue
            if due_at > now:
                break
            heapq.heappop(self._heap)
            del self._live[key]
            out.append(DueTimer(key=key, token=token, due_at=due_at, partition=live[2]))
        return out

    def _skip_stale(self) -> None:
        while self._heap:
            due_at, key, token = self._heap[0]
            live = self._live.get(key)
            if live is not None and live[0] == token and live[1] == due_at:
                return
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        self._heap = [(due, key, token) for key, (token, due, _) in self._live.items()]
        heapq.heapify(self._heap)
