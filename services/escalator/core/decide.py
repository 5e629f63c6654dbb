"""`decide`: the whole escalation logic as one pure function of policy, state, command and time."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from services.escalator.core.policy import Policy
from services.escalator.core.state import IncidentState, Status, Timer
from shared import events as ev
from shared.envelope import Envelope
from shared.ids import derived_id


@dataclass(frozen=True)
class Emit:
    """An event the adapter must publish to `escalations.events`."""

    type: str
    payload: BaseModel


@dataclass(frozen=True)
class Decision:
    """The outcome of one command: the state to store (None: nothing stored) and what to emit."""

    state: IncidentState | None
    emits: tuple[Emit, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True when the command changed anything."""
        return bool(self.emits)


def step_id(incident_id: uuid.UUID, level: int, cycle: int) -> uuid.UUID:
    """Return the deterministic id of one escalation step, the downstream dedup key."""
    return derived_id("step", incident_id, level, cycle)


def _schedule_next(state: IncidentState, reference: datetime) -> IncidentState:
    """Arm the timer for the level after `state.level`, counted from `reference`; or disarm."""
    policy = state.policy
    if policy is None or state.level >= len(policy.levels):
        return state.model_copy(update={"timer": None})
    level = policy.levels[state.level]
    token = state.last_token + 1
    return state.model_copy(update={"timer": Timer(due_at=reference + level.delay, token=token), "last_token": token})


def _advance(state: IncidentState, at: datetime) -> tuple[IncidentState, list[Emit]]:
    """Reach the next level at `at`, then every following zero-delay level."""
    emits: list[Emit] = []
    assert state.policy is not None
    while True:
        level_no = state.level + 1
        level = state.policy.levels[level_no - 1]
        emits.append(
            Emit(
                ev.ESCALATION_STEP_REACHED,
                ev.EscalationStepReached(
                    step_id=step_id(state.incident_id, level_no, state.cycle),
                    level=level_no,
                    cycle=state.cycle,
                    targets=list(level.targets),
                    service=state.service,
                    summary=state.summary,
                    severity=state.severity,
                ),
            )
        )
        state = _schedule_next(state.model_copy(update={"level": level_no}), at)
        if state.timer is None or state.timer.due_at > at:
            return state, emits


def _arm_or_reach(state: IncidentState, at: datetime) -> tuple[IncidentState, list[Emit]]:
    state = _schedule_next(state, at)
    if state.timer is not None and state.timer.due_at <= at:
        return _advance(state, at)
    return state, []


def _on_trigger(policy: Policy | None, state: IncidentState | None, cmd: Envelope, now: datetime) -> Decision:
    trig = cmd.payload_as(ev.Trigger)
    if state is not None and state.is_open:
        count = state.trigger_count + 1
        return Decision(
            state.model_copy(update={"trigger_count": count}),
            (Emit(ev.INCIDENT_DEDUPLICATED, ev.IncidentDeduplicated(count=count)),),
        )
    opened = IncidentState(
        incident_id=cmd.event_id,
        incident_key=cmd.incident_key,
        service=trig.service,
        dedup_key=trig.dedup_key,
        summary=trig.summary,
        severity=trig.severity,
        status=Status.TRIGGERED,
        opened_at=now,
        policy=policy,
        policy_hash=policy.snapshot_hash() if policy is not None else None,
    )
    emits = [
        Emit(
            ev.INCIDENT_OPENED,
            ev.IncidentOpened(
                service=trig.service,
                dedup_key=trig.dedup_key,
                summary=trig.summary,
                severity=trig.severity,
                policy_id=policy.id if policy is not None else "",
                policy_hash=opened.policy_hash or "",
            ),
        )
    ]
    opened, reached = _arm_or_reach(opened, now)
    return Decision(opened, (*emits, *reached))


def _on_acknowledge(_: Policy | None, state: IncidentState | None, cmd: Envelope, now: datetime) -> Decision:
    if state is None or state.status is not Status.TRIGGERED:
        return Decision(state)
    ack = cmd.payload_as(ev.Acknowledge)
    new = state.model_copy(update={"status": Status.ACKNOWLEDGED, "timer": None})
    return Decision(new, (Emit(ev.INCIDENT_ACKNOWLEDGED, ev.IncidentAcknowledged(actor=ack.actor)),))


def _on_resolve(_: Policy | None, state: IncidentState | None, cmd: Envelope, now: datetime) -> Decision:
    if state is None or not state.is_open:
        return Decision(state)
    res = cmd.payload_as(ev.Resolve)
    new = state.model_copy(update={"status": Status.RESOLVED, "timer": None})
    return Decision(new, (Emit(ev.INCIDENT_RESOLVED, ev.IncidentResolved(actor=res.actor)),))


def _on_timer(_: Policy | None, state: IncidentState | None, cmd: Envelope, now: datetime) -> Decision:
    fired = cmd.payload_as(ev.TimerFired)
    if state is None or state.timer is None or state.timer.token != fired.token:
        return Decision(state)  # stale: the state moved on since this timer was armed
    if state.status is not Status.TRIGGERED:
        return Decision(state)
    # Deadlines chain from the due instant, not from when the firing was processed: no drift.
    new, emits = _advance(state, state.timer.due_at)
    return Decision(new, tuple(emits))


Handler = Callable[[Policy | None, IncidentState | None, Envelope, datetime], Decision]

HANDLERS: dict[str, Handler] = {
    ev.TRIGGER: _on_trigger,
    ev.ACKNOWLEDGE: _on_acknowledge,
    ev.RESOLVE: _on_resolve,
    ev.TIMER_FIRED: _on_timer,
}


def decide(policy: Policy | None, state: IncidentState | None, command: Envelope, now: datetime) -> Decision:
    """Apply one command to one incident's state at instant `now`.

    `policy` is the policy a new incident would be opened with; an open incident keeps its snapshot.
    Unknown command types change nothing.
    """
    handler = HANDLERS.get(command.type)
    if handler is None:
        return Decision(state)
    return handler(policy, state, command, now)
