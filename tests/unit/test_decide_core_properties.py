"""Properties of `decide` alone (no repeat, no rules) over generated policies and command sequences.

Each script is a list of (action, seconds to wait before it, variant) applied to one incident key with a
non-decreasing clock; `fire` delivers the current timer (never before its due instant), `stale` a timer
with another token than the current one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.escalator.core.decide import Decision, decide
from services.escalator.core.policy import Level, Policy, Snapshot
from services.escalator.core.state import IncidentState, Status
from shared import events as ev
from shared.envelope import Envelope, new_envelope

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = "svc/k"
SETTINGS = settings(max_examples=200, deadline=None, database=None)


def _policy(delays: list[int]) -> Policy:
    return Policy(
        id="gen",
        levels=tuple(
            Level(
                name=f"l{i}",
                delay=timedelta(seconds=d),
                targets=(ev.Target(type="webhook", url=f"http://127.0.0.1:9/{i}"),),
            )
            for i, d in enumerate(delays, start=1)
        ),
        flap_window=None,  # every trigger after a resolve opens a new incident here; flapping has its own tests
    )


policies = st.lists(st.integers(0, 3600), min_size=1, max_size=5).map(_policy)
# Weighted so that incidents usually get somewhere before an acknowledgement or resolution.
ACTIONS = ("trigger", "trigger", "ack", "resolve", *["fire"] * 6, "stale", "stale", "wait", "wait")
scripts = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 5400), st.integers(0, 3)), min_size=1, max_size=30
).map(lambda s: [("trigger", 0, 0), *s])


@dataclass
class Step:
    """One applied command and what it did."""

    action: str
    before: IncidentState | None
    decision: Decision
    now: datetime


@dataclass
class Run:
    steps: list[Step] = field(default_factory=list)
    # (incident id, type, payload as JSON, instant) of every emitted event, in order.
    emitted: list[tuple[uuid.UUID, str, dict[str, Any], datetime]] = field(default_factory=list)

    def by_incident(self) -> dict[uuid.UUID, list[tuple[str, dict[str, Any], datetime]]]:
        out: dict[uuid.UUID, list[tuple[str, dict[str, Any], datetime]]] = {}
        for incident, type_, payload, at in self.emitted:
            out.setdefault(incident, []).append((type_, payload, at))
        return out


def _event_id(fixed: bool, i: int) -> uuid.UUID | None:
    return uuid.UUID(int=(0x0195 << 112) | (7 << 76) | (0b10 << 62) | i) if fixed else None


def _command(action: str, variant: int, state: IncidentState | None, now: datetime, eid: uuid.UUID | None) -> Envelope:
    if action == "trigger":
        payload: Any = ev.Trigger(service="svc", dedup_key="k", summary=f"s{variant}")
        return new_envelope(ev.TRIGGER, payload, incident_key=KEY, occurred_at=now, event_id=eid)
    if action == "ack":
        payload = ev.Acknowledge(service="svc", dedup_key="k", actor=f"a{variant}")
        return new_envelope(ev.ACKNOWLEDGE, payload, incident_key=KEY, occurred_at=now, event_id=eid)
    if action == "resolve":
        payload = ev.Resolve(service="svc", dedup_key="k", actor=f"a{variant}")
        return new_envelope(ev.RESOLVE, payload, incident_key=KEY, occurred_at=now, event_id=eid)
    assert action == "stale"
    current = state.timer.token if state is not None and state.timer is not None else None
    last = state.last_token if state is not None else 0
    candidates = [t for t in range(last + 3) if t != current]
    token = candidates[variant % len(candidates)]
    due = state.timer.due_at if state is not None and state.timer is not None else now
    payload = ev.TimerFired(token=token, due_at=due)
    return new_envelope(ev.TIMER_FIRED, payload, incident_key=KEY, occurred_at=now, event_id=eid)


def _run(policy: Policy, script: list[tuple[str, int, int]], fixed_ids: bool = True) -> Run:
    snapshot = Snapshot(policy=policy)
    run, state, now = Run(), None, T0
    for i, (action, wait, variant) in enumerate(script):
        now += timedelta(seconds=wait)
        if action == "wait":
            continue
        if action == "fire":
            if state is None or state.timer is None:
                continue
            now = max(now, state.timer.due_at)
            body = ev.TimerFired(token=state.timer.token, due_at=state.timer.due_at)
            env = new_envelope(
                ev.TIMER_FIRED, body, incident_key=KEY, occurred_at=now, event_id=_event_id(fixed_ids, i)
            )
        else:
            env = _command(action, variant, state, now, _event_id(fixed_ids, i))
        decision = decide(snapshot, state, env, now)
        run.steps.append(Step(action, state, decision, now))
        if decision.state is not None:
            run.emitted.extend(
                (decision.state.incident_id, e.type, e.payload.model_dump(mode="json"), e.at) for e in decision.emits
            )
        else:
            assert decision.emits == ()
        state = decision.state
    return run


STATUS_AFTER = {
    ev.INCIDENT_OPENED: Status.TRIGGERED,
    ev.INCIDENT_ACKNOWLEDGED: Status.ACKNOWLEDGED,
    ev.INCIDENT_RESOLVED: Status.RESOLVED,
}


@SETTINGS
@given(policies, scripts)
def test_no_step_is_reached_while_acknowledged_or_resolved(policy: Policy, script: list[tuple[str, int, int]]) -> None:
    run = _run(policy, script)
    for events in run.by_incident().values():
        assert events[0][0] == ev.INCIDENT_OPENED
        status = None
        for type_, _, _ in events:
            if type_ == ev.ESCALATION_STEP_REACHED:
                assert status is Status.TRIGGERED
            status = STATUS_AFTER.get(type_, status)
    for step in run.steps:
        if step.before is not None and step.before.status is not Status.TRIGGERED and step.action != "trigger":
            assert ev.ESCALATION_STEP_REACHED not in [e.type for e in step.decision.emits]


@SETTINGS
@given(policies, scripts)
def test_levels_are_reached_one_after_another_and_never_more_than_the_policy_has(
    policy: Policy, script: list[tuple[str, int, int]]
) -> None:
    run = _run(policy, script)
    n = len(policy.levels)
    for events in run.by_incident().values():
        levels = [p["level"] for t, p, _ in events if t == ev.ESCALATION_STEP_REACHED]
        assert levels == list(range(1, len(levels) + 1))
        assert len(levels) <= n
        assert {p["cycle"] for t, p, _ in events if t == ev.ESCALATION_STEP_REACHED} <= {0}
        exhausted = [p for t, p, _ in events if t == ev.ESCALATION_EXHAUSTED]
        assert exhausted == ([{"level": n, "cycle": 0}] if len(levels) == n else [])
    for step in run.steps:
        assert step.decision.state is None or step.decision.state.level <= n


@SETTINGS
@given(policies, scripts)
def test_resolve_leaves_no_timer(policy: Policy, script: list[tuple[str, int, int]]) -> None:
    run = _run(policy, [*script, ("resolve", 0, 0)])
    for step in run.steps:
        state = step.decision.state
        if state is not None and state.status is Status.RESOLVED:
            assert state.timer is None
            assert state.deadlines == ()
        if state is not None and state.status is Status.ACKNOWLEDGED:
            assert state.timer is None
    final = run.steps[-1].decision.state
    if final is not None:
        assert final.status is Status.RESOLVED


@SETTINGS
@given(policies, scripts)
def test_timer_due_instants_are_the_sum_of_delays_from_opening(
    policy: Policy, script: list[tuple[str, int, int]]
) -> None:
    run = _run(policy, script)
    delays = [level.delay for level in policy.levels]
    sums = list(accumulate(delays))
    n = len(delays)
    for step in run.steps:
        state = step.decision.state
        if state is None or state.status is not Status.TRIGGERED:
            continue
        if state.level < n:
            assert state.timer is not None
            assert state.timer.due_at == state.opened_at + sums[state.level]
            assert state.timer.due_at > step.now or step.action == "stale"
            assert state.timer.token == state.last_token
        else:
            assert state.timer is None
    opened_at: dict[uuid.UUID, datetime] = {}
    for incident, type_, payload, at in run.emitted:
        if type_ == ev.INCIDENT_OPENED:
            opened_at[incident] = at
        if type_ == ev.ESCALATION_STEP_REACHED:
            expected = opened_at[incident] + sums[payload["level"] - 1]
            assert at == expected
            assert datetime.fromisoformat(payload["due_at"]) == expected


@SETTINGS
@given(policies, scripts)
def test_a_stale_timer_changes_nothing(policy: Policy, script: list[tuple[str, int, int]]) -> None:
    run = _run(policy, script)
    for step in run.steps:
        if step.action == "stale":
            assert step.decision.state == step.before
            assert step.decision.emits == ()
            assert step.decision.changed is False


def _without_step_ids(run: Run) -> list[tuple[str, dict[str, Any], datetime]]:
    out = []
    for _, type_, payload, at in run.emitted:
        out.append((type_, {k: v for k, v in payload.items() if k != "step_id"}, at))
    return out


@SETTINGS
@given(policies, scripts)
def test_the_same_commands_give_the_same_events(policy: Policy, script: list[tuple[str, int, int]]) -> None:
    first, second = _run(policy, script), _run(policy, script)
    assert first.emitted == second.emitted
    assert [s.decision.state for s in first.steps] == [s.decision.state for s in second.steps]
    # With fresh (random) event ids, only the ids derived from them differ.
    fresh = _run(policy, script, fixed_ids=False)
    assert _without_step_ids(fresh) == _without_step_ids(first)
    assert [t for _, t, _, _ in fresh.emitted] == [t for _, t, _, _ in first.emitted]


@SETTINGS
@given(policies, st.lists(st.integers(0, 7200), min_size=5, max_size=5))
def test_firing_each_timer_late_still_reaches_every_level_at_its_policy_instant(
    policy: Policy, lateness: list[int]
) -> None:
    env = new_envelope(
        ev.TRIGGER, ev.Trigger(service="svc", dedup_key="k", summary="s"), incident_key=KEY, occurred_at=T0
    )
    decision = decide(Snapshot(policy=policy), None, env, T0)
    reached = [(e.payload.level, e.at) for e in decision.emits if isinstance(e.payload, ev.EscalationStepReached)]
    state = decision.state
    for late in lateness:
        if state is None or state.timer is None:
            break
        at = state.timer.due_at + timedelta(seconds=late)
        fired = ev.TimerFired(token=state.timer.token, due_at=state.timer.due_at)
        decision = decide(None, state, new_envelope(ev.TIMER_FIRED, fired, incident_key=KEY, occurred_at=at), at)
        reached += [(e.payload.level, e.at) for e in decision.emits if isinstance(e.payload, ev.EscalationStepReached)]
        state = decision.state
    sums = list(accumulate(level.delay for level in policy.levels))
    assert reached == [(i, T0 + sums[i - 1]) for i in range(1, len(reached) + 1)]
    assert state is not None
    if state.timer is None:
        assert [lvl for lvl, _ in reached] == list(range(1, len(policy.levels) + 1))
