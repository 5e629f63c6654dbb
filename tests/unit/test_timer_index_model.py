"""TimerIndex: one live deadline per key, earliest first, lazy deletion, partitions, compaction."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.escalator.timer_index import DueTimer, TimerIndex


def test_pop_due_returns_due_timers_earliest_first_with_their_partition() -> None:
    index = TimerIndex()
    index.arm("c", 30.0, 7, 2)
    index.arm("a", 10.0, 3, 0)
    index.arm("b", 20.0, 5, 1)
    assert len(index) == 3
    assert index.next_due() == 10.0
    assert index.pop_due(19.999) == [DueTimer(key="a", token=3, due_at=10.0, partition=0)]
    # The bound is inclusive.
    assert index.pop_due(30.0) == [
        DueTimer(key="b", token=5, due_at=20.0, partition=1),
        DueTimer(key="c", token=7, due_at=30.0, partition=2),
    ]
    assert index.pop_due(1e12) == []
    assert len(index) == 0
    assert index.next_due() is None


def test_nothing_is_due_before_the_first_deadline() -> None:
    index = TimerIndex()
    index.arm("a", 100.0, 1, 0)
    assert index.pop_due(99.0) == []
    assert len(index) == 1
    assert index.next_due() == 100.0


def test_pop_due_stops_at_the_limit_and_keeps_the_rest() -> None:
    index = TimerIndex()
    for i in range(5):
        index.arm(f"k{i}", float(10 - i), i + 1, 0)
    first = index.pop_due(100.0, limit=2)
    assert [(d.key, d.due_at) for d in first] == [("k4", 6.0), ("k3", 7.0)]
    assert len(index) == 3
    assert [(d.key, d.due_at) for d in index.pop_due(100.0)] == [("k2", 8.0), ("k1", 9.0), ("k0", 10.0)]


def test_rearming_later_replaces_the_old_deadline() -> None:
    index = TimerIndex()
    index.arm("a", 10.0, 1, 0)
    index.arm("a", 50.0, 2, 0)
    assert len(index) == 1
    assert index.next_due() == 50.0
    assert index.pop_due(49.0) == []
    assert index.pop_due(50.0) == [DueTimer(key="a", token=2, due_at=50.0, partition=0)]
    assert index.pop_due(1000.0) == []


def test_rearming_earlier_replaces_the_old_deadline() -> None:
    index = TimerIndex()
    index.arm("a", 50.0, 1, 0)
    index.arm("a", 10.0, 2, 3)
    assert index.pop_due(10.0) == [DueTimer(key="a", token=2, due_at=10.0, partition=3)]
    assert index.pop_due(1000.0) == []
    assert len(index) == 0


def test_disarm_forgets_and_is_idempotent() -> None:
    index = TimerIndex()
    index.arm("a", 10.0, 1, 0)
    index.arm("b", 20.0, 1, 0)
    index.disarm("a")
    index.disarm("a")
    index.disarm("never-armed")
    assert len(index) == 1
    assert index.next_due() == 20.0
    assert [d.key for d in index.pop_due(100.0)] == ["b"]


def test_deletion_is_lazy_and_stale_entries_are_skipped() -> None:
    index = TimerIndex()
    index.arm("a", 1.0, 1, 0)
    index.arm("a", 2.0, 2, 0)
    index.arm("b", 3.0, 1, 0)
    index.disarm("b")
    index.arm("c", 4.0, 1, 0)
    assert len(index._heap) == 4  # nothing removed from the heap yet
    assert len(index) == 2
    assert index.next_due() == 2.0  # the stale (1.0, a, 1) is skipped ...
    assert len(index._heap) == 3  # ... and dropped on the way
    assert [(d.key, d.token, d.due_at) for d in index.pop_due(10.0)] == [("a", 2, 2.0), ("c", 1, 4.0)]
    assert index._heap == []


def test_drop_partitions_forgets_only_those_partitions() -> None:
    index = TimerIndex()
    index.arm("p0", 1.0, 1, 0)
    index.arm("p1", 2.0, 1, 1)
    index.arm("p2", 3.0, 1, 2)
    index.arm("p1-bis", 4.0, 1, 1)
    index.drop_partitions({1, 5})
    assert len(index) == 2
    assert index.next_due() == 1.0
    assert index.pop_due(10.0) == [
        DueTimer(key="p0", token=1, due_at=1.0, partition=0),
        DueTimer(key="p2", token=1, due_at=3.0, partition=2),
    ]


def test_a_key_moved_to_another_partition_is_dropped_with_its_new_partition() -> None:
    index = TimerIndex()
    index.arm("a", 1.0, 1, 0)
    index.arm("a", 2.0, 2, 1)
    index.drop_partitions({0})
    assert index.pop_due(10.0) == [DueTimer(key="a", token=2, due_at=2.0, partition=1)]


def test_clear_forgets_everything() -> None:
    index = TimerIndex()
    index.arm("a", 1.0, 1, 0)
    index.arm("b", 2.0, 1, 1)
    index.clear()
    assert (len(index), index.next_due(), index.pop_due(1e9), index._heap) == (0, None, [], [])


def test_compaction_bounds_the_heap_and_keeps_every_live_timer() -> None:
    index = TimerIndex()
    # Armed once before the churn and never again: only compaction can lose them.
    index.arm("cold", 2500.0, 1, 2)
    index.arm("warm", 999.5, 9, 3)
    for token in range(1, 4001):
        index.arm("hot", float(5000 - token), token, 4)
        assert len(index._heap) <= 2 * len(index) + 1025
    assert len(index._heap) < 1100  # compacted at least once
    assert len(index) == 3
    assert index.next_due() == 999.5
    assert index.pop_due(10_000.0) == [
        DueTimer(key="warm", token=9, due_at=999.5, partition=3),
        DueTimer(key="hot", token=4000, due_at=1000.0, partition=4),
        DueTimer(key="cold", token=1, due_at=2500.0, partition=2),
    ]


def test_compaction_under_churn_matches_a_dict() -> None:
    rng = random.Random(20260301)
    index, model = TimerIndex(), {}
    for token in range(1, 6001):
        key = f"k{rng.randrange(8)}"
        due = float(rng.randrange(10_000))
        index.arm(key, due, token, token % 3)
        model[key] = (due, token, token % 3)
        if rng.random() < 0.1:
            gone = f"k{rng.randrange(8)}"
            index.disarm(gone)
            model.pop(gone, None)
    assert len(index._heap) <= 2 * len(model) + 1025
    got = index.pop_due(10_000.0)
    assert sorted((d.key, d.due_at, d.token, d.partition) for d in got) == sorted(
        (k, due, tok, p) for k, (due, tok, p) in model.items()
    )
    assert [d.due_at for d in got] == sorted(d.due_at for d in got)


def test_rearming_with_a_reused_token_after_disarm_does_not_fire_the_old_deadline() -> None:
    # decide() starts a new incident's tokens at 1 again, so after resolve (disarm) and a new
    # trigger on the same key, the index sees the same (key, token) with a later deadline.
    index = TimerIndex()
    index.arm("svc/k", 600.0, 1, 0)  # first incident: level 1 due at 600
    index.disarm("svc/k")  # resolved at 60
    index.arm("svc/k", 720.0, 1, 0)  # second incident opened at 120: level 1 due at 720
    assert index.pop_due(600.0) == []
    assert index.pop_due(720.0) == [DueTimer(key="svc/k", token=1, due_at=720.0, partition=0)]


# --- model test ---------------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("arm"), KEYS, st.integers(0, 50), st.integers(0, 3)),
        st.tuples(st.just("disarm"), KEYS),
        st.tuples(st.just("drop"), st.frozensets(st.integers(0, 3), max_size=2)),
        st.tuples(st.just("pop"), st.integers(0, 50), st.integers(1, 4)),
        st.tuples(st.just("clear")),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None, database=None)
@given(ops)
def test_behaves_like_a_dict_of_one_deadline_per_key(operations: list[tuple[Any, ...]]) -> None:
    index = TimerIndex()
    model: dict[str, tuple[float, int, int]] = {}  # key -> (due, token, partition)
    token = 0
    for op in operations:
        if op[0] == "arm":
            _, key, due, partition = op
            token += 1
            index.arm(key, float(due), token, partition)
            model[key] = (float(due), token, partition)
        elif op[0] == "disarm":
            index.disarm(op[1])
            model.pop(op[1], None)
        elif op[0] == "drop":
            index.drop_partitions(set(op[1]))
            model = {k: v for k, v in model.items() if v[2] not in op[1]}
        elif op[0] == "clear":
            index.clear()
            model.clear()
        else:
            _, now, limit = op
            got = index.pop_due(float(now), limit=limit)
            due = sorted((v[0], k) for k, v in model.items() if v[0] <= now)
            assert len(got) == min(limit, len(due))
            assert [d.due_at for d in got] == [d for d, _ in due[: len(got)]]
            for d in got:
                assert (d.due_at, d.token, d.partition) == model.pop(d.key)
            # Whatever was left behind is not earlier than what was returned.
            if got:
                assert all(v[0] >= got[-1].due_at for v in model.values())
        assert len(index) == len(model)
        assert index.next_due() == (min(v[0] for v in model.values()) if model else None)
