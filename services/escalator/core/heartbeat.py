"""`watch`: heartbeat monitors (dead man's switches) as one pure function of state, command and time.

A monitor is keyed `<service>/heartbeat-monitor:<name>`. Each `heartbeat.ping` re-arms its timer
`interval` ahead. When the timer fires before the next ping, the monitor sends an ordinary
`incident.trigger` for `<service>/heartbeat:<name>`: that incident escalates under the service's
policy like any other. The next ping resolves it. The monitor's own timer is the escalator's
crash-safe timer (stored with the state, indexed again after a restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.escalator.core.durations import Duration
from services.escalator.core.state import Timer
from shared import events as ev
from shared.envelope import Envelope
from shared.ids import incident_key

MONITOR_PREFIX = "heartbeat-monitor:"
INCIDENT_PREFIX = "heartbeat:"


def monitor_key(service: str, name: str) -> str:
    """Kafka key of a monitor's pings and timer."""
    return incident_key(service, f"{MONITOR_PREFIX}{name}")


def incident_dedup_key(name: str) -> str:
    """Dedup key of the incident a missed heartbeat opens."""
    return f"{INCIDENT_PREFIX}{name}"


class HeartbeatState(BaseModel):
    """One monitor: its settings as of the last ping, when that was, and the armed deadline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    service: str
    interval: Duration
    severity: ev.Severity
    summary: str | None = None
    last_ping_at: AwareDatetime
    timer: Timer | None = None
    last_token: int = Field(0, ge=0)
    missed_at: AwareDatetime | None = Field(None, description="Set while the incident of a missed ping is open.")


@dataclass(frozen=True)
class HeartbeatDecision:
    """The monitor state to store and the incident commands to send (type, payload)."""

    state: HeartbeatState | None
    commands: tuple[tuple[str, BaseModel], ...] = ()
    changed: bool = False


def watch(state: HeartbeatState | None, command: Envelope, now: datetime) -> HeartbeatDecision:
    """Apply a ping or a timer firing to one monitor at instant `now`; other commands change nothing."""
    if command.type == ev.HEARTBEAT_PING:
        return _ping(state, command.payload_as(ev.HeartbeatPing), now)
    if command.type == ev.TIMER_FIRED and state is not None:
        fired = command.payload_as(ev.TimerFired)
        if state.timer is not None and state.timer.token == fired.token:
            return _missed(state, fired.due_at)
    return HeartbeatDecision(state)


def _ping(state: HeartbeatState | None, ping: ev.HeartbeatPing, now: datetime) -> HeartbeatDecision:
    token = (state.last_token if state is not None else 0) + 1
    fresh = HeartbeatState(
        name=ping.name,
        service=ping.service,
        interval=ping.interval_seconds,
        severity=ping.severity,
        summary=ping.summary,
        last_ping_at=now,
        last_token=token,
    )
    fresh = fresh.model_copy(update={"timer": Timer(due_at=now + fresh.interval, token=token)})
    commands: tuple[tuple[str, BaseModel], ...] = ()
    if state is not None and state.missed_at is not None:
        back = ev.Resolve(service=ping.service, dedup_key=incident_dedup_key(ping.name), actor=f"heartbeat:{ping.name}")
        commands = ((ev.RESOLVE, back),)
    return HeartbeatDecision(fresh, commands, changed=True)


def _missed(state: HeartbeatState, due_at: datetime) -> HeartbeatDecision:
    silent = int(state.interval.total_seconds())
    summary = state.summary or f"Heartbeat {state.name} missed: no ping for {silent} s"
    trigger = ev.Trigger(
        service=state.service,
        dedup_key=incident_dedup_key(state.name),
        summary=summary[:1024],
        severity=state.severity,
        source=f"heartbeat:{state.name}"[:255],
        custom_details={
            "heartbeat": state.name,
            "last_ping_at": state.last_ping_at.isoformat(),
            "interval_seconds": state.interval.total_seconds(),
        },
    )
    missed = state.model_copy(update={"timer": None, "missed_at": due_at})
    return HeartbeatDecision(missed, ((ev.TRIGGER, trigger),), changed=True)
