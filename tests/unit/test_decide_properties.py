"""Properties of `decide` over generated policies and command sequences (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.escalator.core.decide import Decision, decide
from services.escalator.core.policy import Policy
from services.escalator.core.simulator import Happened, Simulator
from services.escalator.core.state import IncidentState, Status
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from tests.unit.strategies import catalog_of, commands, policies

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=150, deadline=None)


def _payload(action: str, dedup: str) -> tuple[str, Any]:
    if action == "trigger":
        return ev.TRIGGER, ev.Trigger(service="svc", dedup_key=dedup, summary="s")
    if action == "acknowledge":
        return ev.ACKNOWLEDGE, ev.Acknowledge(service="svc", dedup_key=dedup)
    if action == "resolve":
        return ev.RESOLVE, ev.Resolve(service="svc", dedup_key=dedup)
    if action == "escalate":
        return ev.ESCALATE, ev.EscalateNow(service="svc", dedup_key=dedup)
    return ev.SNOOZE, ev.Snooze(service="svc", dedup_key=dedup, duration_seconds=900)


def _run(policy: Policy, script: list[tuple[str, int, str]]) -> Simulator:
    sim = Simulator(catalog_of(policy), T0)
    for action, wait, dedup in script:
        sim.advance_by(timedelta(seconds=wait))
        if action != "wait":
            type_, payload = _payload(action, dedup)
            sim.send(type_, payload)
    sim.advance_by(timedelta(hours=6))
    return sim


def _by_incident(timeline: list[Happened]) -> dict[Any, list[Happened]]:
    out: dict[Any, list[Happened]] = {}
    for h in timeline:
        out.setdefault(h.incident_id, []).append(h)
    return out


STATUS_AFTER = {
    ev.INCIDENT_OPENED: Status.TRIGGERED,
    ev.INCIDENT_ACKNOWLEDGED: Status.ACKNOWLEDGED,
    ev.INCIDENT_REOPENED: Status.TRIGGERED,
    ev.INCIDENT_RESOLVED: Status.RESOLVED,
}


@SETTINGS
@given(policies(), commands)
def test_no_step_while_acknowledged_or_resolved(policy: Policy, script: list[tuple[str, int, str]]) -> None:
    sim = _run(policy, script)
    for events in _by_incident(sim.timeline).values():
        status = None
        for h in events:
            if h.type == ev.ESCALATION_STEP_REACHED:
                assert status is Status.TRIGGERED, (h, status)
            status = STATUS_AFTER.get(h.type, status)


@SETTINGS
@given(policies(), commands)
def test_levels_never_skip_except_by_escalate_now(policy: Policy, script: list[tuple[str, int, str]]) -> None:
    sim = _run(policy, script)
    n = len(policy.levels)
    for events in _by_incident(sim.timeline).values():
        previous = 0
        for h in (e for e in events if e.type == ev.ESCALATION_STEP_REACHED):
            level, reason = h.payload["level"], h.payload["reason"]
            if reason == "opened":
                assert (previous, level) == (0, 1)
            elif reason == "timeout":
                assert level == previous + 1
            elif reason == "repeat":
                assert (previous, level) == (n, 1)
            elif reason == "reopened":
                assert level == max(previous, 1)
            else:
                assert reason == "escalate_now"
            previous = level


@SETTINGS
@given(policies(), commands)
def test_resolve_cancels_every_clock(policy: Policy, script: list[tuple[str, int, str]]) -> None:
    sim = _run(policy, [*script, ("resolve", 1, "a"), ("resolve", 0, "b")])
    for state in sim.states.values():
        assert state.status is Status.RESOLVED
        assert state.deadlines == ()
        assert state.timer is None
    for events in _by_incident(sim.timeline).values():
        types = [h.type for h in events]
        # After a resolve, the incident's next event can only be its reopening by a flapping trigger.
        for i, type_ in enumerate(types[:-1]):
            if type_ == ev.INCIDENT_RESOLVED:
                assert types[i + 1] == ev.INCIDENT_REOPENED
        assert types[-1] == ev.INCIDENT_RESOLVED


@SETTINGS
@given(policies(), commands)
def test_step_ids_are_unique_per_incident(policy: Policy, script: list[tuple[str, int, str]]) -> None:
    sim = _run(policy, script)
    ids = [h.payload["step_id"] for h in sim.steps()]
    assert len(ids) == len(set(ids))


def _replay(policy: Policy, envs: list[tuple[Envelope, datetime]]) -> list[tuple[str, dict[str, Any], datetime]]:
    """Drive decide directly with fixed envelopes, firing timers at their due instants."""
    catalog = catalog_of(policy)
    states: dict[str, IncidentState] = {}
    out: list[tuple[str, dict[str, Any], datetime]] = []

    def apply(env: Envelope, now: datetime) -> None:
        state = states.get(env.incident_key)
        snapshot = catalog.snapshot_for_command("svc", env.type, env.payload, state is not None and state.is_open)
        decision: Decision = decide(snapshot, state, env, now)
        if decision.state is not None:
            states[env.incident_key] = decision.state
        out.extend((e.type, e.payload.model_dump(mode="json"), e.at) for e in decision.emits)

    def fire_until(until: datetime) -> None:
        while True:
            due = [(s.timer.due_at, k) for k, s in states.items() if s.timer is not None and s.timer.due_at <= until]
            if not due:
                return
            at, key = min(due)
            timer = states[key].timer
            assert timer is not None
            fired = new_envelope(
                ev.TIMER_FIRED, ev.TimerFired(token=timer.token, due_at=at), incident_key=key, occurred_at=at
            )
            apply(fired, at)

    for env, at in envs:
        fire_until(at)
        apply(env, at)
    fire_until(envs[-1][1] + timedelta(hours=6))
    return out


@SETTINGS
@given(policies(), commands)
def test_same_commands_give_the_same_actions(policy: Policy, script: list[tuple[str, int, str]]) -> None:
    at, envs = T0, []
    for action, wait, dedup in script:
        at += timedelta(seconds=wait)
        if action != "wait":
            type_, payload = _payload(action, dedup)
            envs.append((new_envelope(type_, payload, incident_key=f"svc/{dedup}", occurred_at=at), at))
    if not envs:
        return
    assert _replay(policy, envs) == _replay(policy, envs)


@SETTINGS
@given(policies())
def test_unanswered_incident_follows_levels_repeat_and_round_robin_exactly(policy: Policy) -> None:
    sim = Simulator(catalog_of(policy), T0)
    sim.send(ev.TRIGGER, ev.Trigger(service="svc", dedup_key="x", summary="s"))
    sim.run_until_quiet()
    loops = 1 + (policy.repeat if isinstance(policy.repeat, int) else 0)
    steps = sim.steps()
    n = len(policy.levels)
    assert [h.payload["level"] for h in steps] == list(range(1, n + 1)) * loops
    assert [h.payload["cycle"] for h in steps] == [c for c in range(loops) for _ in range(n)]
    incident = sim.states["svc/x"].incident_id
    expected_at = T0
    for i, h in enumerate(steps):
        level = policy.levels[h.payload["level"] - 1]
        delay = policy.loop_delay if (i > 0 and h.payload["level"] == 1) else level.delay
        expected_at += delay
        assert h.at == expected_at
        if level.round_robin and len(level.targets) > 1:
            index = (incident.int + h.payload["cycle"]) % len(level.targets)
            assert [t["name"] for t in h.payload["targets"]] == [level.targets[index].name]
        else:
            assert [t["name"] for t in h.payload["targets"]] == [t.name for t in level.targets]
    assert [e.type for e in sim.events(ev.ESCALATION_EXHAUSTED)] == [ev.ESCALATION_EXHAUSTED]


@SETTINGS
@given(policies(), st.integers(0, 5))
def test_a_stale_timer_token_changes_nothing(policy: Policy, offset: int) -> None:
    sim = Simulator(catalog_of(policy), T0)
    sim.send(ev.TRIGGER, ev.Trigger(service="svc", dedup_key="x", summary="s"))
    state = sim.states["svc/x"]
    if state.timer is None:
        return
    stale = new_envelope(
        ev.TIMER_FIRED,
        ev.TimerFired(token=state.timer.token + 1 + offset, due_at=state.timer.due_at),
        incident_key="svc/x",
        occurred_at=state.timer.due_at,
    )
    decision = decide(None, state, stale, state.timer.due_at + timedelta(hours=1))
    assert decision.state is state
    assert decision.emits == ()
    assert not decision.changed
