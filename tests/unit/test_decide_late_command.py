"""A command that happened before a deadline but is processed after it (the escalator was down, or
behind) is applied before the deadline: an incident resolved in time pages nobody.

Found by `escalation chaos`: an incident resolved 4.5 s before its level-1 deadline, while the
worker owning its partition had been killed, was escalated (and paged) when the restarted worker
processed the resolve 15 s later, because overdue deadlines ran at the processing instant first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from services.escalator.core.decide import decide
from services.escalator.core.policy import Level, Policy, Snapshot
from services.escalator.core.state import IncidentState
from shared import events as ev
from shared.envelope import Envelope, new_envelope

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = "checkout/disk-full"
DELAY = timedelta(seconds=5)
SNAPSHOT = Snapshot(
    policy=Policy(
        id="one-level",
        levels=(
            Level(
                name="on-call", delay=DELAY, targets=(ev.Target(type="webhook", name="t", url="http://127.0.0.1:9/t"),)
            ),
        ),
    )
)


def _command(type_: str, payload: BaseModel, at: datetime) -> Envelope:
    return new_envelope(type_, payload, incident_key=KEY, occurred_at=at)


def _opened() -> IncidentState:
    trigger = ev.Trigger(service="checkout", dedup_key="disk-full", summary="disk", severity=ev.Severity.CRITICAL)
    decision = decide(SNAPSHOT, None, _command(ev.TRIGGER, trigger, T0), T0)
    assert decision.state is not None
    return decision.state


def test_resolved_before_the_deadline_but_processed_after_it_pages_nobody() -> None:
    resolve = ev.Resolve(service="checkout", dedup_key="disk-full", actor="bob")
    late = T0 + DELAY + timedelta(seconds=10)
    decision = decide(None, _opened(), _command(ev.RESOLVE, resolve, T0 + timedelta(seconds=1)), late)
    types = [e.type for e in decision.emits]
    assert types == [ev.INCIDENT_RESOLVED]


def test_acknowledged_before_the_deadline_but_processed_after_it_pages_nobody() -> None:
    ack = ev.Acknowledge(service="checkout", dedup_key="disk-full", actor="alice")
    late = T0 + DELAY + timedelta(seconds=10)
    decision = decide(None, _opened(), _command(ev.ACKNOWLEDGE, ack, T0 + timedelta(seconds=1)), late)
    assert ev.ESCALATION_STEP_REACHED not in [e.type for e in decision.emits]
    assert ev.INCIDENT_ACKNOWLEDGED in [e.type for e in decision.emits]


def test_a_command_that_happened_after_the_deadline_still_finds_the_level_reached_first() -> None:
    resolve = ev.Resolve(service="checkout", dedup_key="disk-full", actor="bob")
    at = T0 + DELAY + timedelta(seconds=1)
    decision = decide(None, _opened(), _command(ev.RESOLVE, resolve, at), at + timedelta(seconds=5))
    assert [e.type for e in decision.emits][:1] == [ev.ESCALATION_STEP_REACHED]


def test_a_late_duplicate_leaves_the_overdue_level_to_its_timer_so_a_resolve_after_it_still_counts() -> None:
    trigger = ev.Trigger(service="checkout", dedup_key="disk-full", summary="disk", severity=ev.Severity.CRITICAL)
    resolve = ev.Resolve(service="checkout", dedup_key="disk-full", actor="bob")
    late = T0 + DELAY + timedelta(seconds=10)
    duplicate = decide(None, _opened(), _command(ev.TRIGGER, trigger, T0 + timedelta(seconds=1)), late)
    assert [e.type for e in duplicate.emits] == [ev.INCIDENT_DEDUPLICATED]
    assert duplicate.state is not None
    assert duplicate.state.timer is not None  # still armed: its firing comes after the duplicate
    resolved = decide(None, duplicate.state, _command(ev.RESOLVE, resolve, T0 + timedelta(seconds=2)), late)
    assert [e.type for e in resolved.emits] == [ev.INCIDENT_RESOLVED]


def test_a_late_duplicate_then_the_timer_reaches_the_level() -> None:
    trigger = ev.Trigger(service="checkout", dedup_key="disk-full", summary="disk", severity=ev.Severity.CRITICAL)
    late = T0 + DELAY + timedelta(seconds=10)
    duplicate = decide(None, _opened(), _command(ev.TRIGGER, trigger, T0 + timedelta(seconds=1)), late)
    state = duplicate.state
    assert state is not None
    assert state.timer is not None
    fired = ev.TimerFired(token=state.timer.token, due_at=state.timer.due_at)
    decision = decide(None, state, _command(ev.TIMER_FIRED, fired, late), late)
    assert ev.ESCALATION_STEP_REACHED in [e.type for e in decision.emits]
