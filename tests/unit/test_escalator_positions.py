"""The escalator's own applied position per commands partition (services/escalator/positions.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.escalator.positions import (
    PERSIST_INTERVAL,
    AppliedPositions,
    decode_position,
    encode_position,
    is_position_key,
    position_key,
)
from services.escalator.state_codec import is_snapshot_key, snapshot_key


def test_the_position_moves_only_over_a_contiguous_run_of_applied_commands() -> None:
    positions = AppliedPositions()
    positions.sought(3, 10)
    for offset in (10, 11, 12, 13):
        positions.received(3, offset)
    positions.applied(3, 11)
    positions.applied(3, 13)
    assert positions.position(3) == 10  # 10 is still being applied
    positions.applied(3, 10)
    assert positions.position(3) == 12
    positions.applied(3, 12)
    assert positions.position(3) == 14


def test_a_command_never_received_after_a_rebalance_holds_the_position() -> None:
    # 20 and 21 were fetched and dropped by the rebalance: nothing ever applies them here.
    positions = AppliedPositions()
    positions.sought(0, 18)
    positions.received(0, 18)
    positions.received(0, 19)
    positions.applied(0, 18)
    positions.applied(0, 19)
    assert positions.position(0) == 20


def test_after_a_seek_the_first_command_received_shows_where_the_log_really_starts() -> None:
    # Offsets 0-99 were deleted by retention: the consumer, sought to 0, gets 100 first.
    positions = AppliedPositions()
    positions.sought(1, 0)
    positions.received(1, 100)
    assert positions.position(1) == 100
    positions.applied(1, 100)
    assert positions.position(1) == 101
    # Later gaps are not bridged: only a seek says where reading starts.
    positions.received(1, 105)
    positions.applied(1, 105)
    assert positions.position(1) == 101


def test_a_seek_back_keeps_what_was_applied_above_it() -> None:
    positions = AppliedPositions()
    positions.sought(2, 0)
    for offset in range(5):
        positions.received(2, offset)
    for offset in (0, 1, 3):
        positions.applied(2, offset)
    assert positions.position(2) == 2
    positions.sought(2, 2)  # the rebalance: read again from the stored position
    positions.received(2, 2)
    positions.applied(2, 2)
    assert positions.position(2) == 4  # 3 was applied before the seek


def test_a_partition_given_up_has_no_position_and_late_finishes_are_ignored() -> None:
    positions = AppliedPositions()
    positions.sought(4, 7)
    positions.received(4, 7)
    positions.forget({4})
    positions.applied(4, 7)
    assert positions.position(4) is None


def test_a_position_is_persisted_when_it_moved_and_not_more_often_than_the_interval() -> None:
    positions = AppliedPositions()
    positions.sought(5, 0)
    assert positions.due_for_persist(5, now=100.0) == 0  # a position never written is written once
    positions.persisted(5, 0, now=100.0)
    assert positions.due_for_persist(5, now=200.0) is None  # did not move
    positions.received(5, 0)
    positions.applied(5, 0)
    assert positions.due_for_persist(5, now=100.0 + PERSIST_INTERVAL / 2) is None
    assert positions.due_for_persist(5, now=100.0 + PERSIST_INTERVAL) == 1
    assert positions.due_for_persist(6, now=500.0) is None  # not held


def test_position_keys_are_neither_incident_keys_nor_snapshot_keys() -> None:
    key = position_key(7)
    assert is_position_key(key)
    assert not is_snapshot_key(key)
    assert not is_position_key(snapshot_key(7, "abc"))
    assert not is_position_key("payments/db-down")
    assert decode_position(encode_position(123456789)) == 123456789
    assert decode_position("42") == 42


@given(
    start=st.integers(0, 1000),
    count=st.integers(0, 60),
    data=st.data(),
)
def test_the_position_never_passes_a_command_not_applied(start: int, count: int, data: st.DataObject) -> None:
    """Commands received in offset order, finished in any order, some never: the position is the
    first offset not applied, whatever the order."""
    positions = AppliedPositions()
    positions.sought(0, start)
    offsets = list(range(start, start + count))
    for offset in offsets:
        positions.received(0, offset)
    finished = data.draw(st.permutations(offsets))
    never = data.draw(st.sets(st.sampled_from(offsets))) if offsets else set()
    applied: set[int] = set()
    for offset in finished:
        if offset in never:
            continue
        positions.applied(0, offset)
        applied.add(offset)
        position = positions.position(0)
        assert position is not None
        assert all(o in applied for o in range(start, position))  # nothing below it is unapplied
        assert position == start + count or position not in applied  # and it is the first such
