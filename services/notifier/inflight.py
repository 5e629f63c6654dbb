"""Which escalation events are being handled, and the offset that is safe to commit.

The notifier handles events of different incidents concurrently, across fetched batches (one
incident's events stay in order under its key lock), so a slow receiver holds up only its own
incident. An offset is committed only once every event before it is handled: a crash re-reads
from the first one still open, and the ledger keeps a re-read event from paging twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Partition:
    open: set[int] = field(default_factory=set)
    next: int = 0  # one past the highest offset handed out


class InFlight:
    """Offsets handed out and not yet done, per partition."""

    def __init__(self) -> None:
        self._parts: dict[int, _Partition] = {}

    def start(self, partition: int, offset: int) -> None:
        """The event at `offset` is being handled."""
        part = self._parts.setdefault(partition, _Partition())
        part.open.add(offset)
        part.next = max(part.next, offset + 1)

    def done(self, partition: int, offset: int) -> None:
        """The event at `offset` is handled (its deliveries attempted or deferred, outcomes in Kafka)."""
        part = self._parts.get(partition)
        if part is not None:
            part.open.discard(offset)

    def commit_offsets(self) -> dict[int, int]:
        """Per partition, the first offset not yet handled (everything before it is)."""
        return {n: (min(p.open) if p.open else p.next) for n, p in self._parts.items()}

    def handled_below(self, partition: int, offset: int) -> bool:
        """Every event before `offset` handed out here is handled (none is still open)."""
        part = self._parts.get(partition)
        return part is None or not any(o < offset for o in part.open)

    def forget(self, partition: int) -> None:
        """The partition went to another notifier."""
        self._parts.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(p.open) for p in self._parts.values())
