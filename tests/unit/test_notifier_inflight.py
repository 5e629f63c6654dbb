"""The escalation events in hand: the commit offset never passes one still being handled."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.notifier.inflight import InFlight


def test_commit_waits_for_the_first_open_event() -> None:
    inflight = InFlight()
    for offset in (10, 11, 12):
        inflight.start(0, offset)
    inflight.done(0, 11)
    assert inflight.commit_offsets() == {0: 10}
    inflight.done(0, 10)
    assert inflight.commit_offsets() == {0: 12}
    inflight.done(0, 12)
    assert inflight.commit_offsets() == {0: 13}
    assert len(inflight) == 0
    inflight.forget(0)
    assert inflight.commit_offsets() == {}


def test_handled_below_an_offset_means_no_event_before_it_is_open() -> None:
    inflight = InFlight()
    assert inflight.handled_below(4, 100)  # nothing handed out of that partition
    for offset in (5, 6, 9):
        inflight.start(4, offset)
    assert inflight.handled_below(4, 5)
    assert not inflight.handled_below(4, 6)
    inflight.done(4, 5)
    inflight.done(4, 6)
    assert inflight.handled_below(4, 9)
    assert not inflight.handled_below(4, 10)


@given(order=st.permutations(list(range(30))), cut=st.integers(0, 30))
def test_property_commit_is_one_past_the_longest_done_prefix(order: list[int], cut: int) -> None:
    inflight = InFlight()
    for offset in range(30):
        inflight.start(3, offset)
    finished = set(order[:cut])
    for offset in order[:cut]:
        inflight.done(3, offset)
    prefix = 0
    while prefix in finished:
        prefix += 1
    assert inflight.commit_offsets()[3] == (prefix if prefix < 30 else 30)
    assert len(inflight) == 30 - cut
