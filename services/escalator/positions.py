"""Where each partition of `incidents.commands` is applied up to: the escalator's own consumer position.

Faust commits the offsets of messages it acknowledged, and it acknowledges messages it only skipped
during a rebalance (docs/reliability.md, finding 1): its committed offset can pass commands that were
never applied. The escalator therefore keeps its own position per partition, the first offset whose
command is not yet known to be applied, stores it in its state table beside the incidents (same
changelog partition, written after their states) and, after every rebalance, seeks the partition
there instead of to Faust's committed offset. Commands between the stored position and the real
one are read again and ignored by the redelivery guard (their offset is at or below the incident's
stored offset); the position never passes a command that was not applied. And a command is applied
only in offset order: one Faust hands over past a gap (it dropped the ones before) makes the
escalator seek back to the missing one.

This module is the pure bookkeeping; the Faust adapter feeds it and persists its positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

POSITION_PREFIX = "\x1fposition\x1f"  # no incident key starts with a control character

# How often a partition's position is written to the table while commands flow (seconds).
PERSIST_INTERVAL = 0.5

# How long a partition sought back after a gap waits for the missing command before seeking again.
RESEEK_AFTER = 1.0


def position_key(partition: int) -> str:
    """Table key of one partition's applied position."""
    return f"{POSITION_PREFIX}{partition}"


def is_position_key(key: str) -> bool:
    """True for position entries (not incidents, not snapshots)."""
    return key.startswith(POSITION_PREFIX)


def encode_position(offset: int) -> bytes:
    """Table value of a position."""
    return str(offset).encode()


def decode_position(raw: bytes | str | int) -> int:
    """The offset a position entry holds."""
    if isinstance(raw, int):
        return raw
    return int(raw.decode() if isinstance(raw, bytes) else raw)


class Admission(Enum):
    """What to do with a command the consumer handed over."""

    APPLY = "apply"  # the next offset of its partition
    REPEAT = "repeat"  # an offset already taken (a copy fetched before a seek): skip it
    GAP = "gap"  # past the next offset: commands before it were dropped on the way; read again from there
    UNHELD = "unheld"  # its partition is not positioned (yet) in this generation: fetched before a rebalance


@dataclass
class _Partition:
    applied_below: int  # every command below this offset is applied
    next_offset: int  # the offset the next command taken must have
    done: set[int] = field(default_factory=set)  # applied offsets at or above applied_below
    reseek_since: float | None = None  # a gap was seen and the partition sought back at this instant
    persisted: int | None = None
    persisted_at: float = float("-inf")


class AppliedPositions:
    """Per partition: take commands strictly in offset order, and know the lowest one not yet applied.

    Faust can hand over a command fetched before a seek after it, or drop commands fetched around a
    rebalance (its read offset moved past them) and hand over later ones. So a command is applied
    only when its offset is the partition's next one (`admit`); one already taken is skipped, one
    past a gap makes the adapter seek back to the missing offset (again after `RESEEK_AFTER` if the
    gap persists), and one of a partition not positioned since the last rebalance is skipped.
    Several actors apply commands concurrently (one incident's in order under its key lock), so they
    finish out of order; the applied position moves only over a contiguous run of finished offsets.
    The adapter calls `admit` before its first `await`, so commands are taken in the order the
    stream hands them over.
    """

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def sought(self, partition: int, offset: int) -> None:
        """The consumer was positioned at `offset`: the next command taken must have that offset."""
        state = self._partitions.get(partition)
        if state is None:
            self._partitions[partition] = _Partition(applied_below=offset, next_offset=offset)
            return
        state.applied_below = min(state.applied_below, offset)
        state.next_offset = offset
        state.reseek_since = None

    def admit(self, partition: int, offset: int) -> Admission:
        """Take the command at `offset` if it is the partition's next one (call before any `await`)."""
        state = self._partitions.get(partition)
        if state is None:
            # Every partition is positioned (`sought`) after each rebalance before it is read; one
            # handed over between giving it up (`forget`) and that is a leftover fetched before the
            # rebalance. Counting from it made the next position write pass every command below it
            # (`escalation chaos` lost an acknowledgement and 3 triggers so, docs/reliability.md).
            return Admission.UNHELD
        if offset == state.next_offset:
            state.next_offset += 1
            state.reseek_since = None
            return Admission.APPLY
        return Admission.REPEAT if offset < state.next_offset else Admission.GAP

    def reseek(self, partition: int, now: float) -> int | None:
        """After a gap: the offset to seek back to, unless that was done less than `RESEEK_AFTER` ago."""
        state = self._partitions.get(partition)
        if state is None or (state.reseek_since is not None and now - state.reseek_since < RESEEK_AFTER):
            return None
        state.reseek_since = now
        return state.next_offset

    def overdue_reseeks(self, now: float) -> list[int]:
        """Partitions sought back after a gap whose missing command has not come within `RESEEK_AFTER`."""
        return [
            p
            for p, s in self._partitions.items()
            if s.reseek_since is not None and now - s.reseek_since >= RESEEK_AFTER
        ]

    def skip_to(self, partition: int, offset: int) -> None:
        """Offsets below `offset` not taken yet no longer exist (deleted by retention): pass over them."""
        state = self._partitions.get(partition)
        if state is None or offset <= state.next_offset:
            return
        state.done.update(range(state.next_offset, offset))
        state.next_offset = offset
        self._advance(state)

    def applied(self, partition: int, offset: int) -> None:
        """The command at `offset` is applied (or ignored, or dead-lettered): nothing more to do for it."""
        state = self._partitions.get(partition)
        if state is None or offset < state.applied_below:
            return
        state.done.add(offset)
        self._advance(state)

    def position(self, partition: int) -> int | None:
        """The first offset of `partition` not known to be applied (None: partition not held)."""
        state = self._partitions.get(partition)
        return None if state is None else state.applied_below

    def due_for_persist(self, partition: int, now: float) -> int | None:
        """The position to write now, if it moved and the last write is `PERSIST_INTERVAL` old."""
        state = self._partitions.get(partition)
        if state is None or state.applied_below == state.persisted or now - state.persisted_at < PERSIST_INTERVAL:
            return None
        return state.applied_below

    def persisted(self, partition: int, offset: int, now: float) -> None:
        """`offset` was written to the table for `partition`."""
        state = self._partitions.get(partition)
        if state is not None:
            state.persisted, state.persisted_at = offset, now

    def forget(self, partitions: set[int]) -> None:
        """Partitions given up in a rebalance."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @staticmethod
    def _advance(state: _Partition) -> None:
        while state.applied_below in state.done:
            state.done.discard(state.applied_below)
            state.applied_below += 1
