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

APPLY, REPEAT, GAP, UNHELD = Admission.APPLY, Admission.REPEAT, Admission.GAP, Admission.UNHELD


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


def test_a_command_fetched_before_a_rebalance_is_not_applied_until_its_partition_is_positioned() -> None:
    """The chaos run's loss: partition 2 given up and kept in a rebalance; a command fetched before it
    (offset 1020) handed over before the seek to the stored position made the position start at 1020,
    and a late finish below it wrote 1020 to the table while 1015-1019 were never applied."""
    positions = AppliedPositions()
    positions.sought(2, 1000)
    for offset in range(1000, 1015):
        assert positions.admit(2, offset) is APPLY
        positions.applied(2, offset)
    assert positions.admit(2, 1015) is APPLY  # in flight across the rebalance
    positions.forget({2})
    assert positions.admit(2, 1020) is UNHELD
    positions.applied(2, 1015)
    assert positions.position(2) is None
    assert positions.due_for_persist(2, now=1e9) is None  # nothing written for a partition not positioned
    positions.sought(2, 1015)  # the stored position
    assert positions.admit(2, 1015) is APPLY
    assert positions.admit(2, 1016) is APPLY


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


@given(
    start=st.integers(0, 1000),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("deliver"), st.integers(-5, 30)),
            st.tuples(st.just("finish"), st.integers(0, 50)),
            st.tuples(st.just("persist"), st.just(0)),
            st.tuples(st.just("rebalance"), st.just(0)),
            st.tuples(st.just("positioned"), st.just(0)),
        ),
        max_size=150,
    ),
)
def test_the_stored_position_never_passes_an_unapplied_command_across_rebalances(
    start: int, steps: list[tuple[str, int]]
) -> None:
    """A worker keeps its partition through any number of rebalances. Faust hands over commands in
    any order, stale ones included, at any time (between giving the partition up and seeking it too);
    handlers finish in any order, across rebalances; the position is written now and then, and each
    rebalance seeks to the last one written. Every offset below a written position was applied."""
    positions = AppliedPositions()
    stored = start
    positions.sought(0, stored)
    held = True
    in_flight: list[int] = []
    applied: set[int] = set()
    clock = 0.0
    for kind, n in steps:
        if kind == "deliver":
            offset = max(0, stored + n)
            if positions.admit(0, offset) is APPLY:
                assert held
                in_flight.append(offset)
        elif kind == "finish" and in_flight:
            offset = in_flight.pop(n % len(in_flight))
            applied.add(offset)
            positions.applied(0, offset)
        elif kind == "persist":
            clock += PERSIST_INTERVAL
            due = positions.due_for_persist(0, clock)
            if due is not None:
                positions.persisted(0, due, clock)
                stored = due
        elif kind == "rebalance":
            positions.forget({0})
            held = False
        elif kind == "positioned" and not held:
            positions.sought(0, stored)
            held = True
        assert all(o in applied for o in range(start, stored)), (stored, sorted(applied))
