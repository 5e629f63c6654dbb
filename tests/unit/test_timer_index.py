"""The in-memory deadline index: ordering, re-arming, lazy deletion, partitions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.escalator.timer_index import TimerIndex


def test_pop_due_returns_live_deadlines_in_order_and_only_once() -> None:
    index = TimerIndex()
    index.arm("b", 20.0, 1, 0)
    index.arm("a", 10.0, 1, 1)
    index.arm("c", 30.0, 1, 0)
    assert index.next_due() == 10.0
    assert [(d.key, d.due_at) for d in index.pop_due(25.0)] == [("a", 10.0), ("b", 20.0)]
    assert index.pop_due(25.0) == []
    assert len(index) == 1


def test_rearming_replaces_the_old_deadline() -> None:
    index = TimerIndex()
    index.arm("a", 10.0, 1, 0)
    index.arm("a", 50.0, 2, 0)
    assert index.pop_due(40.0) == []
    due = index.pop_due(50.0)
    assert [(d.key, d.token) for d in due] == [("a", 2)]


def test_disarm_and_drop_partitions_forget_deadlines() -> None:
    index = TimerIndex()
    index.arm("a", 1.0, 1, 0)
    index.arm("b", 2.0, 1, 1)
    index.arm("c", 3.0, 1, 2)
    index.disarm("a")
    index.drop_partitions({1})
    assert [d.key for d in index.pop_due(10.0)] == ["c"]


def test_compaction_keeps_every_live_deadline() -> None:
    index = TimerIndex()
    for token in range(5000):
        index.arm("hot", float(token), token, 0)
    index.arm("cold", 1.0, 1, 0)
    assert len(index._heap) < 5000
    assert [(d.key, d.token) for d in index.pop_due(10_000.0)] == [("cold", 1), ("hot", 4999)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["arm", "arm", "disarm", "pop"]),
            st.sampled_from(["a", "b", "c", "d"]),
            st.integers(0, 100),
        ),
        max_size=60,
    )
)
def test_behaves_like_a_dict_of_deadlines(ops: list[tuple[str, str, int]]) -> None:
    index, model, token = TimerIndex(), dict[str, tuple[float, int]](), 0
    for op, key, t in ops:
        if op == "arm":
            token += 1
            index.arm(key, float(t), token, 0)
            model[key] = (float(t), token)
        elif op == "disarm":
            index.disarm(key)
            model.pop(key, None)
        else:
            got = [(d.key, d.due_at, d.token) for d in index.pop_due(float(t))]
            want = sorted(((k, due, tok) for k, (due, tok) in model.items() if due <= t), key=lambda x: (x[1], x[0]))
            assert got == want
            for k, _, _ in want:
                del model[k]
        assert len(index) == len(model)


def test_restore_puts_back_a_failed_firing_unless_rearmed_since() -> None:
    index = TimerIndex()
    index.arm("a", 1.0, 1, 0)
    index.arm("b", 2.0, 1, 0)
    popped = index.pop_due(5.0)
    index.arm("b", 9.0, 2, 0)  # the agent moved b on while the firing was in flight
    for timer in popped:
        index.restore(timer)
    assert [(d.key, d.token) for d in index.pop_due(5.0)] == [("a", 1)]
    assert [(d.key, d.token) for d in index.pop_due(10.0)] == [("b", 2)]
