"""`decide`: the whole escalation logic as one pure function of snapshot, state, command and time."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from services.escalator.core.policy import SEVERITY_PRIORITY, FieldCondition, Priority, Rule, Snapshot
from services.escalator.core.state import Deadline, IncidentState, SlaClock, Status, Timer
from shared import events as ev
from shared.envelope import Envelope
from shared.ids import derived_id

# Safety net against a policy that could chain steps forever at one instant (validation forbids it).
MAX_STEPS_PER_COMMAND = 1000


@dataclass(frozen=True)
class Emit:
    """An event the adapter must publish to `escalations.events`, and the instant it happened."""

    type: str
    payload: BaseModel
    at: datetime


@dataclass(frozen=True)
class Decision:
    """The outcome of one command: the state to store (None: no incident) and what to emit."""

    state: IncidentState | None
    emits: tuple[Emit, ...] = ()
    changed: bool = False


def step_id(incident_id: uuid.UUID, level: int, cycle: int) -> uuid.UUID:
    """Return the deterministic id of one escalation step, the downstream dedup key."""
    return derived_id("step", incident_id, level, cycle)


@dataclass
class _Work:
    """The state being built while one command is applied (local to one `decide` call)."""

    state: IncidentState
    emits: list[Emit] = field(default_factory=list)

    def set(self, **changes: Any) -> None:
        self.state = self.state.model_copy(update=changes)

    def emit(self, type_: str, payload: BaseModel, at: datetime) -> None:
        self.emits.append(Emit(type_, payload, at))

    @property
    def snapshot(self) -> Snapshot:
        assert self.state.snapshot is not None
        return self.state.snapshot

    def drop(self, *kinds: str) -> None:
        self.set(deadlines=tuple(d for d in self.state.deadlines if d.kind not in kinds))

    def add(self, deadline: Deadline) -> None:
        self.set(deadlines=(*self.state.deadlines, deadline))


# --- time arithmetic under the snapshot's calendar and maintenance windows -------------------------


def _after(snapshot: Snapshot, start: datetime, delta: timedelta, business: bool) -> datetime:
    if business and snapshot.calendar is not None:
        return snapshot.calendar.add(start, delta)
    return start + delta


def _measure(snapshot: Snapshot, start: datetime, end: datetime, business: bool) -> timedelta:
    if business and snapshot.calendar is not None:
        return snapshot.calendar.between(start, end)
    return max(end - start, timedelta(0))


def _out_of_maintenance(snapshot: Snapshot, due: datetime) -> tuple[datetime, str | None, bool]:
    """Move `due` to the end of any maintenance window containing it; say whether it moved."""
    moved, reason = False, None
    changed = True
    while changed:
        changed = False
        for window in snapshot.maintenance:
            if window.start <= due < window.end:
                due, reason, moved, changed = window.end, window.reason, True, True
    return due, reason, moved


# --- escalation ----------------------------------------------------------------------------------


def _arm(
    w: _Work, level_no: int, reference: datetime, reason: Literal["timeout", "opened", "repeat", "reassigned"]
) -> None:
    """Schedule reaching `level_no`, counting its delay from `reference`."""
    policy = w.snapshot.policy
    level = policy.levels[level_no - 1]
    delay = policy.loop_delay if reason == "repeat" else level.delay
    due = _after(w.snapshot, reference, delay * w.state.delay_factor, level.business_time)
    due, why, held = _out_of_maintenance(w.snapshot, due)
    if held:
        w.emit(ev.ESCALATION_HELD, ev.EscalationHeld(level=level_no, until=due, reason=why), reference)
    w.drop("escalate")
    w.add(Deadline(kind="escalate", due_at=due, level=level_no, reason=reason))


def _reach(w: _Work, level_no: int, cycle: int, at: datetime, reason: str) -> None:
    """Notify level `level_no` at `at`, then arm the next level, a repeat, or say it is exhausted."""
    state, policy = w.state, w.snapshot.policy
    level = policy.levels[level_no - 1]
    targets = list(level.targets)
    if level.round_robin and len(targets) > 1:
        targets = [targets[(state.incident_id.int + cycle) % len(targets)]]
    w.emit(
        ev.ESCALATION_STEP_REACHED,
        ev.EscalationStepReached(
            step_id=step_id(state.incident_id, level_no, cycle),
            level=level_no,
            cycle=cycle,
            level_name=level.name,
            kind=level.kind.value,
            reason=reason,
            targets=targets,
            service=state.service,
            summary=state.summary,
            severity=state.severity,
            priority=state.priority.value,
            policy_id=policy.id,
            due_at=at,
        ),
        at,
    )
    w.set(level=level_no, cycle=cycle)
    if level_no < len(policy.levels):
        _arm(w, level_no + 1, at, "timeout")
    elif policy.may_loop(cycle):
        _arm(w, 1, at, "repeat")
    else:
        w.drop("escalate")
        w.emit(ev.ESCALATION_EXHAUSTED, ev.EscalationExhausted(level=level_no, cycle=cycle), at)


def _reopen(
    w: _Work, at: datetime, reason: Literal["ack_timeout", "snooze_ended", "escalate_now", "reassigned"]
) -> None:
    if w.state.status is Status.ACKNOWLEDGED:
        w.emit(ev.INCIDENT_REOPENED, ev.IncidentReopened(reason=reason), at)
    w.drop("ack_timeout", "snooze_end")
    w.set(status=Status.TRIGGERED, snoozed_until=None)


# --- SLA clocks ------------------------------------------------------------------------------------


def _sla_business(w: _Work) -> bool:
    target = w.snapshot.policy.sla.get(w.state.priority)
    return target is not None and target.business_time


def _arm_sla(w: _Work, clock: SlaClock) -> None:
    """Add deadlines for every fraction of a running clock not announced yet."""
    if clock.running_since is None or clock.stopped:
        return
    target = w.snapshot.policy.sla[w.state.priority]
    business = target.business_time
    for fraction in (*target.warn_at, 1.0):
        if fraction in clock.announced:
            continue
        remaining = clock.target * fraction - clock.consumed
        due = _after(w.snapshot, clock.running_since, max(remaining, timedelta(0)), business)
        w.add(Deadline(kind="sla", due_at=due, clock=clock.clock, fraction=fraction))


def _stop_clock(w: _Work, name: str, at: datetime) -> None:
    clocks = []
    for clock in w.state.sla:
        if clock.clock == name and not clock.stopped:
            consumed = clock.consumed
            if clock.running_since is not None:
                consumed += _measure(w.snapshot, clock.running_since, at, _sla_business(w))
            clock = clock.model_copy(update={"stopped": True, "running_since": None, "consumed": consumed})
        clocks.append(clock)
    w.set(sla=tuple(clocks), deadlines=tuple(d for d in w.state.deadlines if not (d.kind == "sla" and d.clock == name)))


# --- deadlines -------------------------------------------------------------------------------------


def _on_escalate(w: _Work, d: Deadline) -> None:
    if w.state.status is not Status.TRIGGERED or d.level is None:
        return
    cycle = w.state.cycle + 1 if d.level <= w.state.level else w.state.cycle
    _reach(w, d.level, cycle, d.due_at, d.reason or "timeout")


def _on_ack_timeout(w: _Work, d: Deadline) -> None:
    if w.state.status is not Status.ACKNOWLEDGED:
        return
    _reopen(w, d.due_at, "ack_timeout")
    _reach(w, max(w.state.level, 1), w.state.cycle + 1, d.due_at, "reopened")


def _on_snooze_end(w: _Work, d: Deadline) -> None:
    if w.state.status is not Status.ACKNOWLEDGED:
        return
    _reopen(w, d.due_at, "snooze_ended")
    _reach(w, max(w.state.level, 1), w.state.cycle + 1, d.due_at, "reopened")


def _on_sla(w: _Work, d: Deadline) -> None:
    clocks = []
    for clock in w.state.sla:
        if clock.clock == d.clock and d.fraction is not None and d.fraction not in clock.announced:
            kind = ev.SLA_BREACHED if d.fraction >= 1.0 else ev.SLA_WARNING
            payload = ev.SlaEvent(
                clock=clock.clock,
                fraction=d.fraction,
                target_seconds=clock.target.total_seconds(),
                priority=w.state.priority.value,
            )
            w.emit(kind, payload, d.due_at)
            clock = clock.model_copy(update={"announced": (*clock.announced, d.fraction)})
        clocks.append(clock)
    w.set(sla=tuple(clocks))


DEADLINE_HANDLERS: dict[str, Callable[[_Work, Deadline], None]] = {
    "escalate": _on_escalate,
    "ack_timeout": _on_ack_timeout,
    "snooze_end": _on_snooze_end,
    "sla": _on_sla,
}


def _run_due(w: _Work, bound: datetime, held: tuple[Deadline, ...] = ()) -> None:
    """Handle every deadline due at or before `bound`, earliest first (new ones included), except `held`."""
    for _ in range(MAX_STEPS_PER_COMMAND):
        due = [d for d in w.state.deadlines if d.due_at <= bound and d not in held]
        if not due:
            return
        first = min(due, key=Deadline.sort_key)
        w.set(deadlines=tuple(d for d in w.state.deadlines if d is not first))
        DEADLINE_HANDLERS[first.kind](w, first)
    raise RuntimeError("policy chains more than MAX_STEPS_PER_COMMAND steps at one instant")


def _retime(w: _Work) -> None:
    """Point the wake-up timer at the earliest deadline; a new instant gets a new token."""
    if not w.state.deadlines:
        w.set(timer=None)
        return
    due = min(d.due_at for d in w.state.deadlines)
    if w.state.timer is not None and w.state.timer.due_at == due:
        return
    token = w.state.last_token + 1
    w.set(timer=Timer(due_at=due, token=token), last_token=token)


# --- commands --------------------------------------------------------------------------------------


def _field(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _matches(rule: Rule, payload: dict[str, Any], severity: ev.Severity, priority: Priority) -> bool:
    m = rule.match
    if m.severity is not None and severity not in m.severity:
        return False
    if m.priority is not None and priority not in m.priority:
        return False
    for path, condition in m.fields.items():
        value = _field(payload, path)
        if isinstance(condition, FieldCondition):
            if not condition.holds(value):
                return False
        elif value != condition:
            return False
    return True


def _open(snapshot: Snapshot | None, cmd: Envelope, now: datetime, previous: IncidentState | None) -> _Work:
    trig = cmd.payload_as(ev.Trigger)
    if trig.priority is not None:
        priority = Priority(trig.priority)
    elif snapshot is not None and snapshot.default_priority is not None:
        priority = snapshot.default_priority
    else:
        priority = SEVERITY_PRIORITY[trig.severity]
    rule = None
    if snapshot is not None:
        rule = next((r for r in snapshot.policy.rules if _matches(r, cmd.payload, trig.severity, priority)), None)
    if rule is not None and rule.priority is not None:
        priority = rule.priority
    digest = snapshot.digest() if snapshot is not None else None
    w = _Work(
        IncidentState(
            incident_id=cmd.event_id,
            incident_key=cmd.incident_key,
            service=trig.service,
            dedup_key=trig.dedup_key,
            summary=trig.summary,
            severity=trig.severity,
            priority=priority,
            status=Status.TRIGGERED,
            opened_at=now,
            snapshot=snapshot,
            snapshot_hash=digest,
            rule=rule.name if rule is not None else None,
            delay_factor=rule.delay_factor if rule is not None and rule.delay_factor is not None else 1.0,
            # Tokens keep growing on a key across incidents, so no timer of an earlier incident on
            # this key can ever match one of this incident.
            last_token=previous.last_token if previous is not None else 0,
        )
    )
    w.emit(
        ev.INCIDENT_OPENED,
        ev.IncidentOpened(
            service=trig.service,
            dedup_key=trig.dedup_key,
            summary=trig.summary,
            severity=trig.severity,
            policy_id=snapshot.policy.id if snapshot is not None else "",
            policy_hash=digest or "",
            priority=priority.value,
            rule=w.state.rule,
        ),
        now,
    )
    if snapshot is None:
        return w
    target = snapshot.policy.sla.get(priority)
    if target is not None:
        clocks = tuple(
            SlaClock(clock=name, target=span, running_since=now)
            for name, span in (("acknowledge", target.acknowledge), ("resolve", target.resolve))
            if span is not None
        )
        w.set(sla=clocks)
        for clock in clocks:
            _arm_sla(w, clock)
    if rule is not None and rule.start_level is not None:
        _reach(w, rule.start_level, 0, now, "rule")
    else:
        _arm(w, 1, now, "opened")
    return w


def _flapping(state: IncidentState, now: datetime) -> bool:
    """True when a trigger at `now` comes within the flap window of the incident's resolution."""
    if state.is_open or state.resolved_at is None or state.snapshot is None:
        return False
    window = state.snapshot.policy.flap_window
    return window is not None and now - state.resolved_at <= window


def _reopen_flapping(w: _Work, now: datetime) -> None:
    """Fold a trigger into the incident that just resolved: reopen it, count it, page nobody now.

    Escalation resumes from where it stood: the next level is armed from this instant, so an
    unacknowledged flapping incident still climbs. SLA clocks stay as the resolution left them.
    """
    count = w.state.trigger_count + 1
    w.set(
        status=Status.TRIGGERED,
        trigger_count=count,
        flaps=w.state.flaps + 1,
        resolved_at=None,
        acknowledged_at=None,
    )
    w.emit(ev.INCIDENT_REOPENED, ev.IncidentReopened(reason="flapping", count=count), now)
    policy, level = w.snapshot.policy, w.state.level
    if level == 0:
        _arm(w, 1, now, "opened")
    elif level < len(policy.levels):
        _arm(w, level + 1, now, "timeout")
    elif policy.may_loop(w.state.cycle):
        _arm(w, 1, now, "repeat")


def _on_trigger(w: _Work | None, snapshot: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is not None and w.state.is_open:
        count = w.state.trigger_count + 1
        w.set(trigger_count=count)
        w.emit(ev.INCIDENT_DEDUPLICATED, ev.IncidentDeduplicated(count=count), now)
        return w
    if w is not None and _flapping(w.state, now):
        _reopen_flapping(w, now)
        return w
    return _open(snapshot, cmd, now, w.state if w is not None else None)


def _on_acknowledge(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or w.state.status is not Status.TRIGGERED:
        return w
    ack = cmd.payload_as(ev.Acknowledge)
    w.drop("escalate")
    w.set(status=Status.ACKNOWLEDGED, acknowledged_at=now)
    if w.state.snapshot is not None:
        _stop_clock(w, "acknowledge", now)
        timeout = w.snapshot.policy.ack_timeout
        if timeout is not None:
            w.add(Deadline(kind="ack_timeout", due_at=now + timeout))
    w.emit(ev.INCIDENT_ACKNOWLEDGED, ev.IncidentAcknowledged(actor=ack.actor), now)
    return w


def _on_resolve(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or not w.state.is_open:
        return w
    res = cmd.payload_as(ev.Resolve)
    if w.state.snapshot is not None:
        _stop_clock(w, "acknowledge", now)
        _stop_clock(w, "resolve", now)
    w.set(status=Status.RESOLVED, deadlines=(), snoozed_until=None, resolved_at=now)
    w.emit(ev.INCIDENT_RESOLVED, ev.IncidentResolved(actor=res.actor), now)
    return w


def _on_escalate_now(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or not w.state.is_open or w.state.snapshot is None:
        return w
    order = cmd.payload_as(ev.EscalateNow)
    levels = len(w.snapshot.policy.levels)
    target = order.to_level if order.to_level is not None else min(w.state.level + 1, levels)
    if target > levels:
        return w
    _reopen(w, now, "escalate_now")
    cycle = w.state.cycle + 1 if target <= w.state.level else w.state.cycle
    _reach(w, target, cycle, now, "escalate_now")
    return w


def _on_snooze(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or w.state.status is not Status.ACKNOWLEDGED:
        return w  # like PagerDuty: only an acknowledged incident can be snoozed
    order = cmd.payload_as(ev.Snooze)
    until = now + timedelta(seconds=order.duration_seconds)
    w.drop("ack_timeout", "snooze_end")
    w.add(Deadline(kind="snooze_end", due_at=until))
    w.set(snoozed_until=until)
    w.emit(ev.INCIDENT_SNOOZED, ev.IncidentSnoozed(until=until, actor=order.actor), now)
    return w


def _on_reassign(w: _Work | None, snapshot: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or not w.state.is_open or snapshot is None:
        return w
    order = cmd.payload_as(ev.Reassign)
    _reopen(w, now, "reassigned")
    digest = snapshot.digest()
    w.set(snapshot=snapshot, snapshot_hash=digest, level=0, cycle=w.state.cycle + 1)
    w.emit(
        ev.INCIDENT_REASSIGNED,
        ev.IncidentReassigned(policy_id=snapshot.policy.id, policy_hash=digest, team=order.team, actor=order.actor),
        now,
    )
    _arm(w, 1, now, "reassigned")
    return w


def _on_note(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None:
        return w
    note = cmd.payload_as(ev.AddNote)
    w.set(notes=w.state.notes + 1)
    w.emit(ev.INCIDENT_NOTE_ADDED, ev.NoteAdded(text=note.text, actor=note.actor), now)
    return w


def _on_pause_sla(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or not w.state.is_open or w.state.sla_paused or w.state.snapshot is None:
        return w
    order = cmd.payload_as(ev.PauseSla)
    clocks = []
    for clock in w.state.sla:
        if clock.running_since is not None:
            spent = _measure(w.snapshot, clock.running_since, now, _sla_business(w))
            clock = clock.model_copy(update={"running_since": None, "consumed": clock.consumed + spent})
        clocks.append(clock)
    w.set(sla=tuple(clocks), sla_paused=True)
    w.drop("sla")
    w.emit(ev.SLA_PAUSED, ev.SlaPauseChange(actor=order.actor, reason=order.reason), now)
    return w


def _on_resume_sla(w: _Work | None, _: Snapshot | None, cmd: Envelope, now: datetime) -> _Work | None:
    if w is None or not w.state.is_open or not w.state.sla_paused:
        return w
    order = cmd.payload_as(ev.ResumeSla)
    clocks = tuple(c if c.stopped else c.model_copy(update={"running_since": now}) for c in w.state.sla)
    w.set(sla=clocks, sla_paused=False)
    for clock in clocks:
        _arm_sla(w, clock)
    w.emit(ev.SLA_RESUMED, ev.SlaPauseChange(actor=order.actor), now)
    return w


Handler = Callable[[_Work | None, Snapshot | None, Envelope, datetime], _Work | None]

HANDLERS: dict[str, Handler] = {
    ev.TRIGGER: _on_trigger,
    ev.ACKNOWLEDGE: _on_acknowledge,
    ev.RESOLVE: _on_resolve,
    ev.ESCALATE: _on_escalate_now,
    ev.SNOOZE: _on_snooze,
    ev.REASSIGN: _on_reassign,
    ev.ADD_NOTE: _on_note,
    ev.PAUSE_SLA: _on_pause_sla,
    ev.RESUME_SLA: _on_resume_sla,
}

# Commands that need a snapshot from the catalog: a trigger (for a new incident) and a reassignment.
NEEDS_SNAPSHOT = frozenset({ev.TRIGGER, ev.REASSIGN})


def decide(snapshot: Snapshot | None, state: IncidentState | None, command: Envelope, now: datetime) -> Decision:
    """Apply one command to one incident's state at instant `now`.

    `snapshot` is what a new incident would open with (for a trigger) or the destination of a
    reassignment; an open incident otherwise keeps the snapshot frozen into it. Deadlines due
    before the command happened (its `occurred_at`, when the intake took it) are handled first,
    each at its own instant. A command naming another incident id than the current one (a stale
    operator action) and unknown command types change nothing.
    """
    stale_target = command.incident_id is not None and (state is None or state.incident_id != command.incident_id)
    if stale_target and command.type != ev.TIMER_FIRED:
        return Decision(state)
    w = _Work(state) if state is not None else None
    if command.type == ev.TIMER_FIRED:
        fired = command.payload_as(ev.TimerFired)
        if w is None or w.state.timer is None or w.state.timer.token != fired.token:
            return Decision(state)  # stale: the incident moved on since this timer was armed
        _run_due(w, max(now, fired.due_at))
    else:
        handler = HANDLERS.get(command.type)
        if handler is None:
            return Decision(state)
        held: tuple[Deadline, ...] = ()
        if w is not None:
            # Deadlines due before the command happened come first. One due after it, though already
            # past at `now` (the command waited in Kafka while a worker was down or behind), is held
            # for its timer, which comes after the command: an incident resolved before its deadline
            # pages nobody, however late the resolve is processed.
            _run_due(w, min(now, command.occurred_at))
            held = w.state.deadlines
        w = handler(w, snapshot, command, now)
        if w is not None:
            _run_due(w, now, held)  # zero delays the command armed are reached in the same decision
    if w is None:
        return Decision(state)
    _retime(w)
    changed = bool(w.emits) or w.state != state
    return Decision(w.state, tuple(w.emits), changed)
