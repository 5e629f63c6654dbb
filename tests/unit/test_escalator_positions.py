"""The escalator's own applied position per commands partition (services/escalator/positions.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.escalator.positions import (
    PERSIST_INTERVAL,
    RESEEK_AFTER,
    Admission,
    AppliedPositions,
    decode_position,
    encode_position,
    is_position_key,
    position_key,
)
from services.escalator.state_codec import is_snapshot_key, snapshot_key

APPLY, REPEAT, GAP = Admission.APPLY, Admission.REPEAT, Admission.GAP


def test_the_position_moves_only_over_a_contiguous_run_of_applied_commands() -> None:
    positions = AppliedPositions()
    positions.sought(3, 10)
    assert [positions.admit(3, o) for o in (10, 11, 12, 13)] == [APPLY] * 4
    positions.applied(3, 11)
    positions.applied(3, 13)
    assert positions.position(3) == 10  # 10 is still being applied
    positions.applied(3, 10)
    assert positions.position(3) == 12
    positions.applied(3, 12)
    assert positions.position(3) == 14


def test_commands_dropped_on_the_way_are_a_gap_and_the_partition_is_read_again_from_them() -> None:
    # The chaos run's loss: sought to 1400, Faust handed over 1441 (fetched before the seek) and
    # dropped the re-read 1400-1440 behind its own read offset.
    positions = AppliedPositions()
    positions.sought(2, 1400)
    assert positions.admit(2, 1441) is GAP
    assert positions.reseek(2, now=10.0) == 1400
    assert positions.admit(2, 1442) is GAP  # more of the stale ones: no second seek yet
    assert positions.reseek(2, now=10.0 + RESEEK_AFTER / 2) is None
    assert positions.overdue_reseeks(now=10.0 + RESEEK_AFTER / 2) == []
    assert positions.overdue_reseeks(now=10.0 + RESEEK_AFTER) == [2]  # the missing one did not come
    positions.sought(2, 1400)
    assert positions.admit(2, 1400) is APPLY
    assert positions.overdue_reseeks(now=100.0) == []
    positions.applied(2, 1400)
    assert positions.position(2) == 1401  # nothing past the gap was counted


def test_a_copy_of_a_command_already_taken_is_skipped() -> None:
    positions = AppliedPositions()
    positions.sought(0, 5)
    assert [positions.admit(0, o) for o in (5, 6, 7)] == [APPLY] * 3
    positions.sought(0, 6)  # a rebalance: read again from the stored position
    assert positions.admit(0, 6) is APPLY
    assert positions.admit(0, 6) is REPEAT  # the copy fetched before the seek comes too
    assert positions.admit(0, 5) is REPEAT
    assert positions.admit(0, 7) is APPLY


def test_a_seek_back_keeps_what_was_in_flight_below_it_unapplied() -> None:
    positions = AppliedPositions()
    positions.sought(2, 0)
    for offset in range(5):
        assert positions.admit(2, offset) is APPLY
    for offset in (0, 1, 3):
        positions.applied(2, offset)
    assert positions.position(2) == 2
    positions.sought(2, 4)  # a seek back over a gap at 4: 2 is still being applied
    assert positions.position(2) == 2
    positions.applied(2, 2)
    assert positions.position(2) == 4  # 3 was applied before


def test_commands_deleted_by_retention_are_passed_over() -> None:
    positions = AppliedPositions()
    positions.sought(1, 0)
    assert positions.admit(1, 100) is GAP  # the log starts at 100 now
    positions.skip_to(1, 100)
    assert positions.position(1) == 100
    assert positions.admit(1, 100) is APPLY
    positions.applied(1, 100)
    assert positions.position(1) == 101


def test_a_partition_given_up_has_no_position_and_late_finishes_are_ignored() -> None:
    positions = AppliedPositions()
    positions.sought(4, 7)
    assert positions.admit(4, 7) is APPLY
    positions.forget({4})
    positions.applied(4, 7)
    assert positions.position(4) is None
    assert positions.reseek(4, now=0.0) is None


def test_a_position_is_persisted_when_it_moved_and_not_more_often_than_the_interval() -> None:
    positions = AppliedPositions()
    positions.sought(5, 0)
    assert positions.due_for_persist(5, now=100.0) == 0  # a position never written is written once
    positions.persisted(5, 0, now=100.0)
    assert positions.due_for_persist(5, now=200.0) is None  # did not move
    assert positions.admit(5, 0) is APPLY
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
    deliveries=st.lists(st.integers(0, 40), max_size=120),
    data=st.data(),
)
def test_commands_are_applied_once_in_offset_order_and_the_position_never_passes_an_unapplied_one(
    start: int, deliveries: list[int], data: st.DataObject
) -> None:
    """Whatever Faust hands over (repeats, jumps, stale copies) and in whatever order the admitted
    commands finish: admitted offsets are start, start+1, ... each once, and the position is the
    first offset not applied."""
    positions = AppliedPositions()
    positions.sought(0, start)
    admitted = [start + d for d in deliveries if positions.admit(0, start + d) is APPLY]
    assert admitted == list(range(start, start + len(admitted)))
    finished = data.draw(st.permutations(admitted))
    never = data.draw(st.sets(st.sampled_from(admitted))) if admitted else set()
    applied: set[int] = set()
    for offset in finished:
        if offset in never:
            continue
        positions.applied(0, offset)
        applied.add(offset)
        position = positions.position(0)
        assert position is not None
        assert all(o in applied for o in range(start, position))
        assert position == start + len(admitted) or position not in applied
