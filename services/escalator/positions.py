"""Where each partition of `incidents.commands` is applied up to: the escalator's own consumer position.

Faust commits the offsets of messages it acknowledged, and it acknowledges messages it only skipped
during a rebalance (docs/reliability.md, finding 1): its committed offset can pass commands that were
never applied. The escalator therefore keeps its own position per partition, the first offset whose
command is not yet known to be applied, stores it in its state table beside the incidents (same
changelog partition, written after their states) and, after every rebalance, seeks the partition
there instead of to Faust's committed offset. Commands between the stored position and the real
one are read again and ignored by the redelivery guard (their offset is at or below the incident's
stored offset); the position never passes a command that was not applied.

This module is the pure bookkeeping; the Faust adapter feeds it and persists its positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

POSITION_PREFIX = "\x1fposition\x1f"  # no incident key starts with a control character

# How often a partition's position is written to the table while commands flow (seconds).
PERSIST_INTERVAL = 0.5


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


@dataclass
class _Partition:
    applied_below: int  # every command below this offset is applied
    done: set[int] = field(default_factory=set)  # applied offsets at or above applied_below
    fresh: bool = True  # sought, nothing received since
    persisted: int | None = None
    persisted_at: float = float("-inf")


class AppliedPositions:
    """Per partition, the lowest offset not yet applied, over commands finished in any order.

    Several actors apply commands concurrently (one incident's in order under its key lock), so
    they finish out of offset order; the position moves only over a contiguous run of finished
    offsets. After a seek, the first command received may lie above the sought offset: the offsets
    in between do not exist any more (deleted by retention), so the position starts there.
    Offsets are received in partition order (the adapter marks a command received before its
    first `await`).
    """

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def sought(self, partition: int, offset: int) -> None:
        """The consumer was positioned at `offset`: start counting there."""
        current = self._partitions.get(partition)
        done = {o for o in current.done if o >= offset} if current is not None else set()
        persisted = current.persisted if current is not None else None
        self._partitions[partition] = _Partition(applied_below=offset, done=done, persisted=persisted)
        self._advance(self._partitions[partition])

    def received(self, partition: int, offset: int) -> None:
        """A command was handed to the escalator (call before its first `await`)."""
        state = self._partitions.get(partition)
        if state is None:  # received without a seek first: count from here
            self._partitions[partition] = _Partition(applied_below=offset, fresh=False)
            return
        if state.fresh:
            state.fresh = False
            if offset > state.applied_below:
                state.applied_below = offset
                state.done = {o for o in state.done if o >= offset}
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
