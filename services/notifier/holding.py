"""What the deferred loop holds of `notifications.pending`: pure bookkeeping, no I/O, no clock.

Per partition: the waiting deliveries by due time, the ones being attempted, and the offset that is
safe to commit (the lowest record not yet attempted or dropped: a crash re-reads from there). A
newer attempt of the same notification supersedes an older one still held (after a crash both are
read again); a `Settled` record drops its incident's earlier waits. Nothing of a partition fires
until the partition was read up to its gate, so every superseding and settling record is known
first. The gate may be unknown at assignment (`assign(n, None)`): the notifier first handles the
escalation events it reads again, whose waits and settles land on this topic, then `open`s the gate
at the topic's end of that moment.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from services.notifier.pending import Pending, PendingSend, Settled


@dataclass
class _Partition:
    gate: int | None  # fire nothing before `position` reaches it; None: not known yet, fire nothing
    position: int | None = None  # the next offset to read (None: not known yet)
    heap: list[tuple[datetime, int]] = field(default_factory=list)  # (due, offset), lazily pruned
    held: dict[int, PendingSend] = field(default_factory=dict)  # offset -> waiting delivery
    inflight: set[int] = field(default_factory=set)
    by_key: dict[str, int] = field(default_factory=dict)  # idempotency key -> offset of its newest record
    by_incident: dict[uuid.UUID, set[int]] = field(default_factory=dict)

    def forget(self, offset: int) -> PendingSend:
        item = self.held.pop(offset)
        if self.by_key.get(item.key) == offset:
            del self.by_key[item.key]
        if item.incident_id is not None:
            offsets = self.by_incident.get(item.incident_id)
            if offsets is not None:
                offsets.discard(offset)
                if not offsets:
                    del self.by_incident[item.incident_id]
        return item

    @property
    def ready(self) -> bool:
        """Read up to the gate: every record that may void a wait is known."""
        return self.gate is not None and self.position is not None and self.position >= self.gate


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now, and where its record is."""

    partition: int
    offset: int
    item: PendingSend


class Holding:
    """The waiting deliveries of the partitions this notifier owns."""

    def __init__(self) -> None:
        self._parts: dict[int, _Partition] = {}

    def assign(self, partition: int, end: int | None) -> None:
        """Own `partition`; fire nothing of it before reading up to `end` (its end when assigned), or
        before `open` when `end` is None."""
        self._parts[partition] = _Partition(gate=end)

    def open(self, partition: int, end: int) -> None:
        """Set the gate of a partition assigned without one: fire nothing of it before reading up to `end`."""
        part = self._parts.get(partition)
        if part is not None and part.gate is None:
            part.gate = end

    def unknown_positions(self) -> list[int]:
        """Owned partitions not yet read up to their gate (the loop tells their position)."""
        return [n for n, p in self._parts.items() if not p.ready]

    def revoke(self, partition: int) -> set[int]:
        """Give up `partition`: its waits are forgotten (the next owner reads them); return its in-flight offsets."""
        part = self._parts.pop(partition, None)
        return set() if part is None else set(part.inflight)

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions owned."""
        return frozenset(self._parts)

    def take(self, partition: int, offset: int, record: Pending | None) -> list[PendingSend]:
        """Take the record read at `offset` (None: unreadable, skipped); return the waits it made void."""
        part = self._parts.get(partition)
        if part is None or (part.position is not None and offset < part.position):
            return []  # not ours any more, or read twice after a seek
        part.position = offset + 1
        if record is None:
            return []
        if isinstance(record, Settled):
            return [part.forget(o) for o in sorted(part.by_incident.get(record.incident_id, set()))]
        void: list[PendingSend] = []
        older = part.by_key.get(record.key)
        if older is not None and older in part.held:
            void.append(part.forget(older))
        part.held[offset] = record
        part.by_key[record.key] = offset
        if record.incident_id is not None:
            part.by_incident.setdefault(record.incident_id, set()).add(offset)
        heapq.heappush(part.heap, (record.not_before, offset))
        return void

    def due(self, now: datetime) -> list[Due]:
        """The deliveries due at `now` (they become in flight until `done`)."""
        out: list[Due] = []
        for number, part in self._parts.items():
            if not part.ready:
                continue
            while part.heap and part.heap[0][0] <= now:
                _, offset = heapq.heappop(part.heap)
                if offset not in part.held:
                    continue  # superseded or settled
                item = part.forget(offset)
                part.inflight.add(offset)
                out.append(Due(number, offset, item))
        return out

    def requeue(self, due: Due, not_before: datetime) -> None:
        """An attempt that could not finish (Kafka away): hold it again until `not_before`."""
        part = self._parts.get(due.partition)
        if part is None or due.offset not in part.inflight:
            return  # the partition went to another notifier, which reads the record again
        part.inflight.discard(due.offset)
        if part.by_key.get(due.item.key, -1) > due.offset:
            return  # a newer attempt of the same notification is held
        item = due.item
        part.held[due.offset] = item
        part.by_key[item.key] = due.offset
        if item.incident_id is not None:
            part.by_incident.setdefault(item.incident_id, set()).add(due.offset)
        heapq.heappush(part.heap, (not_before, due.offset))

    def advance(self, partition: int, position: int) -> None:
        """The consumer's position moved past offsets without records (none here, but Kafka allows gaps)."""
        part = self._parts.get(partition)
        if part is not None and (part.position is None or position > part.position):
            part.position = position

    def done(self, partition: int, offset: int) -> None:
        """The attempt of the record at `offset` finished (its outcome and any retry are in Kafka)."""
        part = self._parts.get(partition)
        if part is not None:
            part.inflight.discard(offset)

    def commit_offsets(self) -> dict[int, int]:
        """Per partition (whose position is known), the offset a restart may resume from without losing a wait."""
        out: dict[int, int] = {}
        for number, part in self._parts.items():
            open_offsets = part.held.keys() | part.inflight
            if open_offsets:
                out[number] = min(open_offsets)
            elif part.position is not None:
                out[number] = part.position
        return out

    def next_due(self) -> datetime | None:
        """The earliest due time held (possibly of a record already void: then just an early wake-up)."""
        heads = [p.heap[0][0] for p in self._parts.values() if p.heap and p.ready]
        return min(heads) if heads else None

    def caught_up(self) -> bool:
        """Every partition was read up to where it ended at assignment."""
        return all(p.ready for p in self._parts.values())

    def __len__(self) -> int:
        return sum(len(p.held) for p in self._parts.values())
