"""Heartbeat monitors: a ping arms the watch, a missed interval triggers, the next ping resolves."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.escalator.core.heartbeat import HeartbeatDecision, HeartbeatState, monitor_key, watch
from services.escalator.core.state import Timer
from shared import events as ev
from shared.envelope import Envelope, new_envelope

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = monitor_key("storage", "nightly-backup")


def _ping(at: datetime, interval: float = 60.0, summary: str | None = None) -> Envelope:
    payload = ev.HeartbeatPing(name="nightly-backup", service="storage", interval_seconds=interval, summary=summary)
    return new_envelope(ev.HEARTBEAT_PING, payload, incident_key=KEY, occurred_at=at)


def _fired(timer: Timer | None) -> Envelope:
    assert timer is not None
    payload = ev.TimerFired(token=timer.token, due_at=timer.due_at)
    return new_envelope(ev.TIMER_FIRED, payload, incident_key=KEY, occurred_at=timer.due_at)


def _state(decision: HeartbeatDecision) -> HeartbeatState:
    assert decision.state is not None
    return decision.state


def test_the_first_ping_arms_the_timer_one_interval_ahead_and_sends_nothing() -> None:
    decision = watch(None, _ping(T0), T0)
    state = _state(decision)
    assert decision.commands == ()
    assert state.timer == Timer(due_at=T0 + timedelta(seconds=60), token=1)
    assert (state.last_ping_at, state.missed_at) == (T0, None)


def test_each_ping_pushes_the_deadline_and_a_superseded_timer_is_stale() -> None:
    first = _state(watch(None, _ping(T0), T0))
    second = _state(watch(first, _ping(T0 + timedelta(seconds=30)), T0 + timedelta(seconds=30)))
    assert second.timer == Timer(due_at=T0 + timedelta(seconds=90), token=2)
    stale = watch(second, _fired(first.timer), T0 + timedelta(seconds=60))
    assert stale.changed is False
    assert stale.commands == ()


def test_a_missed_interval_triggers_an_incident_on_the_service_once() -> None:
    armed = _state(watch(None, _ping(T0), T0))
    decision = watch(armed, _fired(armed.timer), T0 + timedelta(seconds=61))
    missed = _state(decision)
    assert missed.timer is None
    assert missed.missed_at == T0 + timedelta(seconds=60)
    [(type_, payload)] = decision.commands
    assert type_ == ev.TRIGGER
    assert isinstance(payload, ev.Trigger)
    assert (payload.service, payload.dedup_key, payload.severity) == ("storage", "heartbeat:nightly-backup", "critical")
    assert payload.summary == "Heartbeat nightly-backup missed: no ping for 60 s"
    assert payload.custom_details["last_ping_at"] == T0.isoformat()
    # The same firing again (a redelivery) finds no timer: nothing more is sent.
    assert watch(missed, _fired(armed.timer), T0 + timedelta(seconds=62)).commands == ()


def test_the_ping_after_a_miss_resolves_the_incident_and_rearms() -> None:
    armed = _state(watch(None, _ping(T0, summary="Backup silent"), T0))
    missed = _state(watch(armed, _fired(armed.timer), T0 + timedelta(seconds=60)))
    back = watch(missed, _ping(T0 + timedelta(seconds=300)), T0 + timedelta(seconds=300))
    [(type_, payload)] = back.commands
    assert type_ == ev.RESOLVE
    assert isinstance(payload, ev.Resolve)
    assert (payload.service, payload.dedup_key, payload.actor) == (
        "storage",
        "heartbeat:nightly-backup",
        "heartbeat:nightly-backup",
    )
    state = _state(back)
    assert state.missed_at is None
    assert state.timer == Timer(due_at=T0 + timedelta(seconds=360), token=2)


def test_other_commands_change_nothing() -> None:
    armed = _state(watch(None, _ping(T0), T0))
    trigger = new_envelope(
        ev.TRIGGER, ev.Trigger(service="storage", dedup_key="x", summary="s"), incident_key=KEY, occurred_at=T0
    )
    assert watch(armed, trigger, T0) == HeartbeatDecision(armed)
    assert watch(None, _fired(armed.timer), T0) == HeartbeatDecision(None)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 600)), min_size=1, max_size=40))
def test_triggers_and_resolves_alternate_and_each_follows_its_cause(steps: list[tuple[bool, int]]) -> None:
    """Any sequence of pings and firings of the current timer: a trigger only after a firing, a
    resolve only on the first ping after one, never two triggers without a resolve between."""
    state = _state(watch(None, _ping(T0), T0))
    now, sent = T0, []
    for fire, gap in steps:
        now += timedelta(seconds=gap)
        if fire and state.timer is not None:
            decision = watch(state, _fired(state.timer), max(now, state.timer.due_at))
            assert [t for t, _ in decision.commands] == [ev.TRIGGER]
        else:
            decision = watch(state, _ping(now), now)
            expected = [ev.RESOLVE] if state.missed_at is not None else []
            assert [t for t, _ in decision.commands] == expected
        sent += [t for t, _ in decision.commands]
        state = _state(decision)
        assert state.last_token >= (state.timer.token if state.timer else 0)
    assert all(a != b for a, b in itertools.pairwise(sent))
    assert not sent or sent[0] == ev.TRIGGER
