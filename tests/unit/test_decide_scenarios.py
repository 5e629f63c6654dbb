"""`decide` on hand-written command sequences, checked to the exact instant and payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from services.escalator.core.decide import Decision, Emit, decide
from services.escalator.core.policy import Level, LevelKind, Policy, Priority, Snapshot
from services.escalator.core.state import Deadline, IncidentState, Status, Timer
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.ids import PROJECT_NAMESPACE

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = "checkout/disk-full"
MIN = timedelta(minutes=1)


def _target(name: str) -> ev.Target:
    return ev.Target(type="webhook", name=name, url=f"http://127.0.0.1:9/{name}")


def _policy(policy_id: str, *delays: timedelta, prefix: str = "") -> Policy:
    return Policy(
        id=policy_id,
        levels=tuple(
            Level(name=f"{prefix}level-{i}", delay=delay, targets=(_target(f"{prefix}t{i}"),))
            for i, delay in enumerate(delays, start=1)
        ),
    )


TIERED = Snapshot(policy=_policy("tiered", 5 * MIN, 10 * MIN, 30 * MIN))


def _trigger(at: datetime, event_id: uuid.UUID | None = None, summary: str = "Disk 95% full") -> Envelope:
    payload = ev.Trigger(service="checkout", dedup_key="disk-full", summary=summary, severity=ev.Severity.CRITICAL)
    return new_envelope(ev.TRIGGER, payload, incident_key=KEY, occurred_at=at, event_id=event_id)


def _ack(at: datetime, actor: str | None = "alice", incident_id: uuid.UUID | None = None) -> Envelope:
    payload = ev.Acknowledge(service="checkout", dedup_key="disk-full", actor=actor)
    return new_envelope(ev.ACKNOWLEDGE, payload, incident_key=KEY, occurred_at=at, incident_id=incident_id)


def _resolve(at: datetime, actor: str | None = "bob") -> Envelope:
    payload = ev.Resolve(service="checkout", dedup_key="disk-full", actor=actor)
    return new_envelope(ev.RESOLVE, payload, incident_key=KEY, occurred_at=at)


def _fired(timer: Timer | None, at: datetime | None = None, token: int | None = None) -> Envelope:
    assert timer is not None, "expected an armed timer"
    payload = ev.TimerFired(token=timer.token if token is None else token, due_at=timer.due_at)
    return new_envelope(ev.TIMER_FIRED, payload, incident_key=KEY, occurred_at=at or timer.due_at)


def _open(snapshot: Snapshot = TIERED, at: datetime = T0) -> tuple[Envelope, IncidentState]:
    env = _trigger(at)
    decision = decide(snapshot, None, env, at)
    assert decision.state is not None
    return env, decision.state


def _fire_current(state: IncidentState, snapshot: Snapshot | None = None, late: timedelta = timedelta(0)) -> Decision:
    assert state.timer is not None
    return decide(snapshot, state, _fired(state.timer, state.timer.due_at + late), state.timer.due_at + late)


def _step(
    state: IncidentState, level: int, at: datetime, reason: str, policy: Policy = TIERED.policy
) -> ev.EscalationStepReached:
    lvl = policy.levels[level - 1]
    return ev.EscalationStepReached(
        step_id=uuid.uuid5(PROJECT_NAMESPACE, f"step\x1f{state.incident_id}\x1f{level}\x1f0"),
        level=level,
        cycle=0,
        level_name=lvl.name,
        kind="functional",
        reason=reason,
        targets=list(lvl.targets),
        service="checkout",
        summary="Disk 95% full",
        severity=ev.Severity.CRITICAL,
        priority="P1",
        policy_id=policy.id,
        due_at=at,
    )


def _types(decision: Decision) -> list[str]:
    return [e.type for e in decision.emits]


def _unchanged(decision: Decision, state: IncidentState | None) -> None:
    assert decision.state == state
    assert decision.emits == ()
    assert decision.changed is False


# --- opening and the first timer -------------------------------------------------------------------


def test_trigger_opens_an_incident_with_the_level_one_timer_due_at_open_plus_delay() -> None:
    env = _trigger(T0)
    decision = decide(TIERED, None, env, T0)
    state = decision.state
    assert state is not None
    assert state.incident_id == env.event_id
    assert state.incident_key == KEY
    assert (state.service, state.dedup_key, state.summary) == ("checkout", "disk-full", "Disk 95% full")
    assert state.severity is ev.Severity.CRITICAL
    assert state.priority is Priority.P1
    assert state.status is Status.TRIGGERED
    assert state.opened_at == T0
    assert (state.level, state.cycle, state.trigger_count) == (0, 0, 1)
    assert state.snapshot == TIERED
    assert state.snapshot_hash == TIERED.digest()
    assert len(state.snapshot_hash) == 64
    assert state.timer == Timer(due_at=T0 + 5 * MIN, token=1)
    assert state.last_token == 1
    assert state.deadlines == (Deadline(kind="escalate", due_at=T0 + 5 * MIN, level=1, reason="opened"),)
    opened = ev.IncidentOpened(
        service="checkout",
        dedup_key="disk-full",
        summary="Disk 95% full",
        severity=ev.Severity.CRITICAL,
        policy_id="tiered",
        policy_hash=TIERED.digest(),
        priority="P1",
        rule=None,
    )
    assert decision.emits == (Emit(ev.INCIDENT_OPENED, opened, T0),)
    assert decision.changed is True


def test_firing_reaches_level_one_at_the_due_instant_and_arms_level_two_from_it() -> None:
    _, opened = _open()
    # The firing arrives 7 s after the deadline: level 2 still counts from the deadline itself.
    decision = _fire_current(opened, late=timedelta(seconds=7))
    state = decision.state
    assert state is not None
    due1 = T0 + 5 * MIN
    assert decision.emits == (Emit(ev.ESCALATION_STEP_REACHED, _step(opened, 1, due1, "opened"), due1),)
    assert state.level == 1
    assert state.status is Status.TRIGGERED
    assert state.timer == Timer(due_at=due1 + 10 * MIN, token=2)
    assert state.deadlines == (Deadline(kind="escalate", due_at=due1 + 10 * MIN, level=2, reason="timeout"),)


def test_every_level_is_reached_at_the_sum_of_the_delays_and_the_last_disarms() -> None:
    _, state = _open()
    reached: list[tuple[int, datetime, datetime | None]] = []
    timers: list[Timer | None] = []
    for _ in range(3):
        decision = _fire_current(state)
        assert decision.state is not None
        state = decision.state
        for e in decision.emits:
            if isinstance(e.payload, ev.EscalationStepReached):
                reached.append((e.payload.level, e.at, e.payload.due_at))
        timers.append(state.timer)
    assert reached == [
        (1, T0 + 5 * MIN, T0 + 5 * MIN),
        (2, T0 + 15 * MIN, T0 + 15 * MIN),
        (3, T0 + 45 * MIN, T0 + 45 * MIN),
    ]
    assert timers == [Timer(due_at=T0 + 15 * MIN, token=2), Timer(due_at=T0 + 45 * MIN, token=3), None]
    assert _types(decision) == [ev.ESCALATION_STEP_REACHED, ev.ESCALATION_EXHAUSTED]
    assert decision.emits[1] == Emit(ev.ESCALATION_EXHAUSTED, ev.EscalationExhausted(level=3, cycle=0), T0 + 45 * MIN)
    assert state.level == 3
    assert state.deadlines == ()
    assert state.last_token == 3


def test_a_very_late_firing_catches_up_each_level_at_its_own_instant() -> None:
    _, opened = _open()
    # Fired 12 minutes late: level 2 (due at T0+15m) has come too, at its own instant.
    decision = _fire_current(opened, late=12 * MIN)
    assert decision.state is not None
    assert decision.emits == (
        Emit(ev.ESCALATION_STEP_REACHED, _step(opened, 1, T0 + 5 * MIN, "opened"), T0 + 5 * MIN),
        Emit(ev.ESCALATION_STEP_REACHED, _step(opened, 2, T0 + 15 * MIN, "timeout"), T0 + 15 * MIN),
    )
    assert decision.state.level == 2
    assert decision.state.timer == Timer(due_at=T0 + 45 * MIN, token=2)


# --- acknowledge and resolve -----------------------------------------------------------------------


def test_acknowledge_stops_escalation() -> None:
    _, opened = _open()
    at = T0 + 2 * MIN
    decision = decide(None, opened, _ack(at), at)
    state = decision.state
    assert state is not None
    assert state.status is Status.ACKNOWLEDGED
    assert state.acknowledged_at == at
    assert state.timer is None
    assert state.deadlines == ()
    assert state.level == 0
    assert decision.emits == (Emit(ev.INCIDENT_ACKNOWLEDGED, ev.IncidentAcknowledged(actor="alice"), at),)
    # The level-1 timer armed before the acknowledgement fires anyway: nothing happens.
    late = decide(None, state, _fired(opened.timer), T0 + 5 * MIN)
    _unchanged(late, state)


def test_acknowledge_after_level_one_keeps_the_level_and_stops_the_timer() -> None:
    _, opened = _open()
    first = _fire_current(opened).state
    assert first is not None
    at = T0 + 6 * MIN
    decision = decide(None, first, _ack(at, actor=None), at)
    assert decision.state is not None
    assert (decision.state.status, decision.state.level, decision.state.timer) == (Status.ACKNOWLEDGED, 1, None)
    assert decision.emits == (Emit(ev.INCIDENT_ACKNOWLEDGED, ev.IncidentAcknowledged(actor=None), at),)
    _unchanged(decide(None, decision.state, _fired(first.timer), T0 + 15 * MIN), decision.state)


def test_acknowledging_twice_or_after_resolve_changes_nothing() -> None:
    _, opened = _open()
    acked = decide(None, opened, _ack(T0 + MIN), T0 + MIN).state
    assert acked is not None
    _unchanged(decide(None, acked, _ack(T0 + 2 * MIN, actor="carol"), T0 + 2 * MIN), acked)
    resolved = decide(None, acked, _resolve(T0 + 3 * MIN), T0 + 3 * MIN).state
    assert resolved is not None
    _unchanged(decide(None, resolved, _ack(T0 + 4 * MIN), T0 + 4 * MIN), resolved)


def test_resolve_of_a_triggered_incident_stops_every_clock() -> None:
    _, opened = _open()
    at = T0 + 3 * MIN
    decision = decide(None, opened, _resolve(at), at)
    state = decision.state
    assert state is not None
    assert state.status is Status.RESOLVED
    assert state.is_open is False
    assert state.timer is None
    assert state.deadlines == ()
    assert decision.emits == (Emit(ev.INCIDENT_RESOLVED, ev.IncidentResolved(actor="bob"), at),)
    _unchanged(decide(None, state, _fired(opened.timer), T0 + 5 * MIN), state)
    _unchanged(decide(None, state, _resolve(T0 + 6 * MIN), T0 + 6 * MIN), state)


def test_resolve_of_an_acknowledged_incident() -> None:
    _, opened = _open()
    acked = decide(None, opened, _ack(T0 + MIN), T0 + MIN).state
    assert acked is not None
    decision = decide(None, acked, _resolve(T0 + 20 * MIN, actor=None), T0 + 20 * MIN)
    assert decision.state is not None
    assert (decision.state.status, decision.state.timer, decision.state.deadlines) == (Status.RESOLVED, None, ())
    assert decision.emits == (Emit(ev.INCIDENT_RESOLVED, ev.IncidentResolved(actor=None), T0 + 20 * MIN),)


# --- stale timers ----------------------------------------------------------------------------------


def test_a_stale_token_is_ignored() -> None:
    _, opened = _open()
    after_one = _fire_current(opened).state
    assert after_one is not None
    assert after_one.timer == Timer(due_at=T0 + 15 * MIN, token=2)
    # The first timer (token 1) delivered again, even at the later deadline: nothing changes.
    _unchanged(decide(None, after_one, _fired(opened.timer), T0 + 15 * MIN), after_one)
    # A token from the future, at the right instant: nothing changes either.
    _unchanged(decide(None, after_one, _fired(after_one.timer, token=3), T0 + 15 * MIN), after_one)
    # The current one works.
    decision = _fire_current(after_one)
    assert decision.state is not None
    assert decision.state.level == 2


def test_a_firing_slightly_before_its_due_instant_still_reaches_the_level_at_that_instant() -> None:
    # The timer loop's clock may run a little behind the one that armed the deadline.
    _, opened = _open()
    assert opened.timer is not None
    early = opened.timer.due_at - timedelta(milliseconds=3)
    decision = decide(None, opened, _fired(opened.timer, early), early)
    assert decision.emits == (Emit(ev.ESCALATION_STEP_REACHED, _step(opened, 1, T0 + 5 * MIN, "opened"), T0 + 5 * MIN),)
    assert decision.state is not None
    assert decision.state.timer == Timer(due_at=T0 + 15 * MIN, token=2)


def test_a_matching_timer_on_an_acknowledged_incident_reaches_no_level() -> None:
    # A state stored with a leftover escalate deadline (e.g. by an older build): only a triggered
    # incident escalates.
    _, opened = _open()
    acked = decide(None, opened, _ack(T0 + MIN), T0 + MIN).state
    assert acked is not None
    leftover = acked.model_copy(update={"timer": opened.timer, "deadlines": opened.deadlines})
    decision = decide(None, leftover, _fired(opened.timer), T0 + 5 * MIN)
    assert decision.emits == ()
    assert decision.state is not None
    assert (decision.state.status, decision.state.level, decision.state.timer) == (Status.ACKNOWLEDGED, 0, None)


def test_a_timer_for_an_unknown_key_changes_nothing() -> None:
    timer = Timer(due_at=T0, token=1)
    _unchanged(decide(TIERED, None, _fired(timer), T0), None)


# --- zero delays -----------------------------------------------------------------------------------


def test_zero_delay_levels_are_reached_at_once_and_chain() -> None:
    policy = _policy("instant", timedelta(0), timedelta(0), 5 * MIN)
    env = _trigger(T0)
    decision = decide(Snapshot(policy=policy), None, env, T0)
    state = decision.state
    assert state is not None
    assert _types(decision) == [ev.INCIDENT_OPENED, ev.ESCALATION_STEP_REACHED, ev.ESCALATION_STEP_REACHED]
    assert decision.emits[1:] == (
        Emit(ev.ESCALATION_STEP_REACHED, _step(state, 1, T0, "opened", policy), T0),
        Emit(ev.ESCALATION_STEP_REACHED, _step(state, 2, T0, "timeout", policy), T0),
    )
    assert state.level == 2
    assert state.timer == Timer(due_at=T0 + 5 * MIN, token=1)
    assert state.deadlines == (Deadline(kind="escalate", due_at=T0 + 5 * MIN, level=3, reason="timeout"),)


def test_a_policy_of_only_zero_delays_is_reached_and_exhausted_on_trigger() -> None:
    policy = _policy("all-now", timedelta(0), timedelta(0))
    decision = decide(Snapshot(policy=policy), None, _trigger(T0), T0)
    assert decision.state is not None
    assert _types(decision) == [
        ev.INCIDENT_OPENED,
        ev.ESCALATION_STEP_REACHED,
        ev.ESCALATION_STEP_REACHED,
        ev.ESCALATION_EXHAUSTED,
    ]
    assert [e.at for e in decision.emits] == [T0, T0, T0, T0]
    assert decision.state.level == 2
    assert decision.state.timer is None
    assert decision.state.last_token == 0


def test_a_zero_delay_level_after_a_timed_one_is_reached_with_it() -> None:
    policy = _policy("mixed", 5 * MIN, timedelta(0), 10 * MIN)
    _, opened = _open(Snapshot(policy=policy))
    decision = _fire_current(opened)
    assert decision.state is not None
    assert [(e.payload.level, e.at) for e in decision.emits if isinstance(e.payload, ev.EscalationStepReached)] == [
        (1, T0 + 5 * MIN),
        (2, T0 + 5 * MIN),
    ]
    assert decision.state.timer == Timer(due_at=T0 + 15 * MIN, token=2)


# --- deduplication and reopening -------------------------------------------------------------------


def test_duplicate_triggers_are_counted_without_touching_the_timer() -> None:
    _, state = _open()
    counts = []
    for minutes in (1, 2, 3):
        at = T0 + minutes * MIN
        decision = decide(TIERED, state, _trigger(at, summary="other text"), at)
        assert decision.state is not None
        assert decision.emits == (Emit(ev.INCIDENT_DEDUPLICATED, ev.IncidentDeduplicated(count=minutes + 1), at),)
        state = decision.state
        counts.append(state.trigger_count)
        assert state.timer == Timer(due_at=T0 + 5 * MIN, token=1)
        assert state.deadlines == (Deadline(kind="escalate", due_at=T0 + 5 * MIN, level=1, reason="opened"),)
        assert state.summary == "Disk 95% full"
    assert counts == [2, 3, 4]


def test_a_trigger_for_an_acknowledged_incident_is_a_duplicate_and_does_not_rearm() -> None:
    _, opened = _open()
    acked = decide(None, opened, _ack(T0 + MIN), T0 + MIN).state
    assert acked is not None
    decision = decide(TIERED, acked, _trigger(T0 + 2 * MIN), T0 + 2 * MIN)
    assert decision.state is not None
    assert _types(decision) == [ev.INCIDENT_DEDUPLICATED]
    assert (decision.state.status, decision.state.timer, decision.state.trigger_count) == (
        Status.ACKNOWLEDGED,
        None,
        2,
    )


def test_a_trigger_after_resolve_opens_a_new_incident_with_a_new_id() -> None:
    first_env, opened = _open()
    resolved = decide(None, opened, _resolve(T0 + MIN), T0 + MIN).state
    assert resolved is not None
    at = T0 + 7 * MIN  # past the default 5-minute flap window after the resolve
    second_env = _trigger(at)
    decision = decide(TIERED, resolved, second_env, at)
    state = decision.state
    assert state is not None
    assert state.incident_id == second_env.event_id
    assert state.incident_id != first_env.event_id
    assert (state.status, state.trigger_count, state.level, state.opened_at) == (Status.TRIGGERED, 1, 0, at)
    assert state.timer is not None
    assert state.timer.due_at == at + 5 * MIN
    assert _types(decision) == [ev.INCIDENT_OPENED]
    # Its steps carry ids derived from the new incident.
    step = _fire_current(state).emits[0].payload
    assert isinstance(step, ev.EscalationStepReached)
    assert step.step_id == uuid.uuid5(PROJECT_NAMESPACE, f"step\x1f{second_env.event_id}\x1f1\x1f0")


def test_an_operator_command_for_a_previous_incident_changes_nothing() -> None:
    first_env, opened = _open()
    resolved = decide(None, opened, _resolve(T0 + MIN), T0 + MIN).state
    assert resolved is not None
    current = decide(TIERED, resolved, _trigger(T0 + 10 * MIN), T0 + 10 * MIN).state
    assert current is not None
    stale_ack = _ack(T0 + 11 * MIN, incident_id=first_env.event_id)
    _unchanged(decide(None, current, stale_ack, T0 + 11 * MIN), current)
    own_ack = _ack(T0 + 11 * MIN, incident_id=current.incident_id)
    assert _types(decide(None, current, own_ack, T0 + 11 * MIN)) == [ev.INCIDENT_ACKNOWLEDGED]


# --- commands that change nothing ------------------------------------------------------------------


def test_acknowledge_and_resolve_for_an_unknown_key_change_nothing() -> None:
    _unchanged(decide(TIERED, None, _ack(T0), T0), None)
    _unchanged(decide(TIERED, None, _resolve(T0), T0), None)


class _Whatever(BaseModel):
    service: str = "checkout"
    dedup_key: str = "disk-full"


def test_an_unknown_command_type_changes_nothing() -> None:
    _, opened = _open()
    for type_ in ("incident.explode", ev.INCIDENT_OPENED, ev.ESCALATION_STEP_REACHED):
        env = new_envelope(type_, _Whatever(), incident_key=KEY, occurred_at=T0 + MIN)
        _unchanged(decide(TIERED, opened, env, T0 + MIN), opened)
        _unchanged(decide(TIERED, None, env, T0 + MIN), None)
    # Not even a deadline that is overdue by then is acted upon.
    env = new_envelope("incident.explode", _Whatever(), incident_key=KEY, occurred_at=T0 + 9 * MIN)
    _unchanged(decide(TIERED, opened, env, T0 + 9 * MIN), opened)


# --- the frozen snapshot ---------------------------------------------------------------------------


def test_the_snapshot_frozen_at_opening_is_used_whatever_is_passed_later() -> None:
    other = Snapshot(policy=_policy("other", MIN, MIN, MIN, prefix="other-"))
    _, opened = _open(TIERED)
    dup = decide(other, opened, _trigger(T0 + MIN), T0 + MIN).state
    assert dup is not None
    assert (dup.snapshot, dup.snapshot_hash) == (TIERED, TIERED.digest())
    decision = _fire_current(dup, snapshot=other)
    state = decision.state
    assert state is not None
    assert decision.emits == (Emit(ev.ESCALATION_STEP_REACHED, _step(opened, 1, T0 + 5 * MIN, "opened"), T0 + 5 * MIN),)
    assert state.timer == Timer(due_at=T0 + 15 * MIN, token=2)  # tiered's 10 minutes, not other's 1
    acked = decide(other, state, _ack(T0 + 6 * MIN), T0 + 6 * MIN).state
    assert acked is not None
    assert acked.snapshot == TIERED


# --- step ids --------------------------------------------------------------------------------------


def _walk(env: Envelope) -> list[uuid.UUID]:
    state = decide(TIERED, None, env, T0).state
    ids: list[uuid.UUID] = []
    while state is not None and state.timer is not None:
        decision = _fire_current(state)
        ids.extend(e.payload.step_id for e in decision.emits if isinstance(e.payload, ev.EscalationStepReached))
        state = decision.state
    return ids


def test_step_ids_are_deterministic_and_distinct_per_level() -> None:
    env = _trigger(T0, event_id=uuid.UUID("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
    ids = _walk(env)
    assert ids == [
        uuid.uuid5(PROJECT_NAMESPACE, f"step\x1f0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\x1f{level}\x1f0")
        for level in (1, 2, 3)
    ]
    assert len(set(ids)) == 3
    assert _walk(env) == ids  # same incident, same ids: downstream dedups a replayed step
    other = _walk(_trigger(T0, event_id=uuid.UUID("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")))
    assert len(other) == 3
    assert set(other).isdisjoint(ids)


def test_step_payload_carries_kind_and_only_that_levels_targets() -> None:
    policy = Policy(
        id="mgmt",
        levels=(
            Level(name="ops", delay=MIN, targets=(_target("ops"),)),
            Level(
                name="cto",
                kind=LevelKind.HIERARCHICAL,
                delay=2 * MIN,
                targets=(_target("cto"), ev.Target(type="user", id="u-cto", name="The CTO")),
            ),
        ),
    )
    _, opened = _open(Snapshot(policy=policy))
    second = _fire_current(_fire_current(opened).state or opened)
    step = second.emits[0].payload
    assert isinstance(step, ev.EscalationStepReached)
    assert (step.level, step.level_name, step.kind, step.reason, step.policy_id) == (
        2,
        "cto",
        "hierarchical",
        "timeout",
        "mgmt",
    )
    assert [t.label for t in step.targets] == ["cto", "The CTO"]
    assert step.due_at == T0 + 3 * MIN
