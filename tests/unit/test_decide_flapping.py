"""Flapping: a trigger soon after the incident resolved reopens it, counted, without a new page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.escalator.core.decide import Decision, decide
from services.escalator.core.policy import Level, Policy, Snapshot
from services.escalator.core.state import IncidentState, Status
from shared import events as ev
from shared.envelope import Envelope, new_envelope

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = "checkout/disk-full"
MIN = timedelta(minutes=1)


def _snapshot(window: timedelta | None = 5 * MIN, repeat: int = 0) -> Snapshot:
    levels = tuple(
        Level(
            name=f"level-{i}",
            delay=delay,
            targets=(ev.Target(type="webhook", name=f"t{i}", url=f"http://127.0.0.1:9/t{i}"),),
        )
        for i, delay in enumerate((5 * MIN, 10 * MIN), start=1)
    )
    return Snapshot(policy=Policy(id="tiered", levels=levels, flap_window=window, repeat=repeat))


def _cmd(type_: str, at: datetime) -> Envelope:
    payloads = {
        ev.TRIGGER: ev.Trigger(service="checkout", dedup_key="disk-full", summary="Disk full"),
        ev.RESOLVE: ev.Resolve(service="checkout", dedup_key="disk-full", actor="prometheus"),
        ev.ACKNOWLEDGE: ev.Acknowledge(service="checkout", dedup_key="disk-full", actor="alice"),
    }
    return new_envelope(type_, payloads[type_], incident_key=KEY, occurred_at=at)


def _apply(snapshot: Snapshot, state: IncidentState | None, type_: str, at: datetime) -> Decision:
    return decide(snapshot, state, _cmd(type_, at), at)


def _types(decision: Decision) -> list[str]:
    return [e.type for e in decision.emits]


def _storm(snapshot: Snapshot, gaps: list[int]) -> tuple[IncidentState, list[Decision]]:
    """Trigger, then resolve and trigger again after each gap (seconds), starting at T0."""
    first = _apply(snapshot, None, ev.TRIGGER, T0)
    assert first.state is not None
    state, at, decisions = first.state, T0, [first]
    for gap in gaps:
        at += timedelta(seconds=gap)
        resolved = _apply(snapshot, state, ev.RESOLVE, at)
        assert resolved.state is not None
        reopened = _apply(snapshot, resolved.state, ev.TRIGGER, at + timedelta(seconds=gap))
        at += timedelta(seconds=gap)
        assert reopened.state is not None
        state = reopened.state
        decisions += [resolved, reopened]
    return state, decisions


def test_a_trigger_within_the_window_reopens_the_same_incident_and_pages_nobody() -> None:
    snapshot = _snapshot()
    opened = _apply(snapshot, None, ev.TRIGGER, T0).state
    assert opened is not None
    resolved = _apply(snapshot, opened, ev.RESOLVE, T0 + MIN).state
    assert resolved is not None
    assert resolved.resolved_at == T0 + MIN
    decision = _apply(snapshot, resolved, ev.TRIGGER, T0 + 3 * MIN)
    state = decision.state
    assert state is not None
    assert state.incident_id == opened.incident_id
    assert (state.status, state.trigger_count, state.flaps) == (Status.TRIGGERED, 2, 1)
    assert _types(decision) == [ev.INCIDENT_REOPENED]
    payload = decision.emits[0].payload
    assert isinstance(payload, ev.IncidentReopened)
    assert (payload.reason, payload.count) == ("flapping", 2)
    # Level 1 was never reached: it is armed again, its delay counted from the reopening.
    assert state.timer is not None
    assert state.timer.due_at == T0 + 3 * MIN + 5 * MIN


def test_a_reopened_incident_resumes_at_the_next_level_not_the_first() -> None:
    snapshot = _snapshot()
    opened = _apply(snapshot, None, ev.TRIGGER, T0).state
    assert opened is not None
    assert opened.timer is not None
    fired = decide(
        None,
        opened,
        new_envelope(
            ev.TIMER_FIRED,
            ev.TimerFired(token=opened.timer.token, due_at=opened.timer.due_at),
            incident_key=KEY,
            occurred_at=opened.timer.due_at,
        ),
        opened.timer.due_at,
    ).state
    assert fired is not None
    assert fired.level == 1
    resolved = _apply(snapshot, fired, ev.RESOLVE, T0 + 6 * MIN).state
    reopened = _apply(snapshot, resolved, ev.TRIGGER, T0 + 7 * MIN)
    assert reopened.state is not None
    assert reopened.state.level == 1
    assert [d.level for d in reopened.state.deadlines if d.kind == "escalate"] == [2]
    assert reopened.state.timer is not None
    assert reopened.state.timer.due_at == T0 + 7 * MIN + 10 * MIN


def test_a_trigger_after_the_window_opens_a_new_incident() -> None:
    snapshot = _snapshot()
    opened = _apply(snapshot, None, ev.TRIGGER, T0).state
    resolved = _apply(snapshot, opened, ev.RESOLVE, T0 + MIN).state
    decision = _apply(snapshot, resolved, ev.TRIGGER, T0 + MIN + 5 * MIN + timedelta(seconds=1))
    assert decision.state is not None
    assert opened is not None
    assert decision.state.incident_id != opened.incident_id
    assert _types(decision) == [ev.INCIDENT_OPENED]


def test_no_window_means_every_trigger_after_resolve_is_a_new_incident() -> None:
    snapshot = _snapshot(window=None)
    opened = _apply(snapshot, None, ev.TRIGGER, T0).state
    resolved = _apply(snapshot, opened, ev.RESOLVE, T0 + MIN).state
    decision = _apply(snapshot, resolved, ev.TRIGGER, T0 + MIN + timedelta(seconds=1))
    assert _types(decision) == [ev.INCIDENT_OPENED]


def test_an_acknowledged_incident_that_flaps_must_be_acknowledged_again() -> None:
    snapshot = _snapshot()
    opened = _apply(snapshot, None, ev.TRIGGER, T0).state
    acked = _apply(snapshot, opened, ev.ACKNOWLEDGE, T0 + MIN).state
    resolved = _apply(snapshot, acked, ev.RESOLVE, T0 + 2 * MIN).state
    reopened = _apply(snapshot, resolved, ev.TRIGGER, T0 + 3 * MIN).state
    assert reopened is not None
    assert (reopened.status, reopened.acknowledged_at) == (Status.TRIGGERED, None)
    again = _apply(snapshot, reopened, ev.ACKNOWLEDGE, T0 + 4 * MIN)
    assert _types(again) == [ev.INCIDENT_ACKNOWLEDGED]


@given(st.lists(st.integers(1, 120), min_size=1, max_size=30))
def test_a_storm_within_the_window_is_one_incident_whose_count_is_every_trigger(gaps: list[int]) -> None:
    """Resolve/trigger pairs, each gap at most 2 minutes (inside the 5-minute window)."""
    state, decisions = _storm(_snapshot(), gaps)
    assert state.trigger_count == len(gaps) + 1
    assert state.flaps == len(gaps)
    opened = [d for d in decisions if ev.INCIDENT_OPENED in _types(d)]
    assert len(opened) == 1
    # No decision of the storm pages anyone at once: steps only come from timers.
    assert all(ev.ESCALATION_STEP_REACHED not in _types(d) for d in decisions)
    assert {d.state.incident_id for d in decisions if d.state is not None} == {state.incident_id}
