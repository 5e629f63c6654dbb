"""The console's incident read model: an incident's current state folded from its recorded events, and
its live clocks (next escalation, SLA) from replaying its commands through the escalator's pure core.
Pure: rows and `now` come in, views go out."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from services.escalator.core.policy import Catalog
from services.escalator.core.simulator import Simulator
from services.escalator.core.state import IncidentState
from shared import events as ev

# Commands an incident's clocks are replayed from (timer firings are not: the simulator makes its own).
COMMAND_MODELS: dict[str, type[BaseModel]] = dict(ev.ACTIONS.values())
# Replaying an incident older than this stops here: its clocks are long over.
REPLAY_LIMIT = timedelta(days=30)

STATES = ("triggered", "acknowledged", "snoozed", "resolved")


@dataclass(frozen=True)
class Fact:
    """One recorded event of an incident, as the read model needs it."""

    type: str
    occurred_at: datetime
    payload: Mapping[str, Any]
    actor: str | None = None
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    """One recorded command for an incident's key."""

    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    payload: Mapping[str, Any]


@dataclass
class IncidentView:
    """An incident as the console lists it."""

    incident_id: str
    incident_key: str
    service: str = ""
    dedup_key: str = ""
    summary: str = ""
    severity: str = ""
    priority: str = ""
    policy_id: str = ""
    policy_hash: str = ""
    rule: str | None = None
    state: str = "triggered"
    level: int = 0
    level_name: str | None = None
    cycle: int = 0
    teams: list[str] = field(default_factory=list)
    opened_at: str | None = None
    updated_at: str | None = None
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None
    snoozed_until: str | None = None
    held_until: str | None = None
    exhausted: bool = False
    triggers: int = 1
    notes: int = 0
    sla: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_escalation: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @property
    def is_open(self) -> bool:
        """True until resolved."""
        return self.state != "resolved"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _text(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) else None


def fold(incident_id: str, incident_key: str, facts: Iterable[Fact], now: datetime) -> IncidentView:
    """The incident's state after its events (in order of occurrence)."""
    view = IncidentView(incident_id=incident_id, incident_key=incident_key)
    service, _, dedup = incident_key.partition("/")
    view.service, view.dedup_key = service, dedup
    teams: set[str] = set()
    snoozed: datetime | None = None
    for fact in facts:
        p = fact.payload
        view.updated_at = fact.occurred_at.isoformat()
        if fact.type == ev.INCIDENT_OPENED:
            view.opened_at = fact.occurred_at.isoformat()
            view.summary = _text(p, "summary") or ""
            view.severity = _text(p, "severity") or ""
            view.priority = _text(p, "priority") or ""
            view.policy_id = _text(p, "policy_id") or ""
            view.policy_hash = _text(p, "policy_hash") or ""
            view.rule = _text(p, "rule")
            view.service = _text(p, "service") or view.service
        elif fact.type == ev.ESCALATION_STEP_REACHED:
            view.level = int(p.get("level", view.level))
            view.cycle = int(p.get("cycle", view.cycle))
            view.level_name = _text(p, "level_name")
            teams.update(fact.teams)
            view.held_until = None
        elif fact.type == ev.INCIDENT_ACKNOWLEDGED:
            view.state = "acknowledged"
            view.acknowledged_at = fact.occurred_at.isoformat()
            view.acknowledged_by = _text(p, "actor") or fact.actor
        elif fact.type == ev.INCIDENT_RESOLVED:
            view.state = "resolved"
            view.resolved_at = fact.occurred_at.isoformat()
            view.resolved_by = _text(p, "actor") or fact.actor
            snoozed = None
        elif fact.type == ev.INCIDENT_REOPENED:
            view.state = "triggered"
            view.resolved_at = view.resolved_by = None
            view.acknowledged_at = view.acknowledged_by = None
            snoozed = None
            if isinstance(p.get("count"), int):
                view.triggers = p["count"]
        elif fact.type == ev.INCIDENT_SNOOZED:
            until = _text(p, "until")
            snoozed = datetime.fromisoformat(until) if until else None
        elif fact.type == ev.INCIDENT_REASSIGNED:
            view.policy_id = _text(p, "policy_id") or view.policy_id
            view.policy_hash = _text(p, "policy_hash") or view.policy_hash
            view.level = 0
            teams.update(fact.teams)
        elif fact.type == ev.INCIDENT_NOTE_ADDED:
            view.notes += 1
        elif fact.type == ev.INCIDENT_DEDUPLICATED:
            view.triggers = int(p.get("count", view.triggers))
        elif fact.type == ev.ESCALATION_HELD:
            view.held_until = _text(p, "until")
        elif fact.type == ev.ESCALATION_EXHAUSTED:
            view.exhausted = True
        elif fact.type in (ev.SLA_WARNING, ev.SLA_BREACHED):
            clock = _text(p, "clock") or "acknowledge"
            entry = view.sla.setdefault(clock, {"fraction": 0.0, "breached": False})
            entry["fraction"] = max(float(entry["fraction"]), float(p.get("fraction", 0.0)))
            entry["breached"] = bool(entry["breached"]) or fact.type == ev.SLA_BREACHED
    if snoozed is not None and snoozed > now and view.state == "acknowledged":
        view.state = "snoozed"
        view.snoozed_until = snoozed.isoformat()
    view.teams = sorted(teams)
    return view


@dataclass(frozen=True)
class Clocks:
    """What the escalator's core says an open incident is waiting for, at `now`."""

    next_escalation: dict[str, Any] | None
    sla: list[dict[str, Any]]
    snoozed_until: str | None
    policy_current: bool
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def replay_state(catalog: Catalog, view: IncidentView, commands: Iterable[Command], now: datetime) -> IncidentState:
    """The escalator's state of the incident at `now`: its commands through `decide` on a virtual clock."""
    ordered = sorted(commands, key=lambda c: c.occurred_at)
    if not ordered:
        raise ValueError("no recorded commands")
    sim = Simulator(catalog, ordered[0].occurred_at)
    for cmd in ordered:
        model = COMMAND_MODELS.get(cmd.type)
        if model is None:
            continue
        # As recorded: a trigger carries no incident id (the escalator makes its event id the incident's).
        sim.send(cmd.type, model.model_validate(dict(cmd.payload)), at=cmd.occurred_at)
    sim.advance_to(min(now, ordered[0].occurred_at + REPLAY_LIMIT))
    state = sim.states.get(view.incident_key)
    if state is None:
        raise ValueError("the commands open no incident under the current policies")
    return state


def clocks(catalog: Catalog, view: IncidentView, commands: Iterable[Command], now: datetime) -> Clocks:
    """Next escalation and SLA clocks of an open incident; a note says why they are missing or estimated."""
    if not view.is_open:
        return Clocks(None, [], None, True, "resolved: no clock runs")
    try:
        state = replay_state(catalog, view, commands, now)
    except (ValueError, ValidationError) as exc:
        return Clocks(None, [], None, False, f"clocks unavailable: {str(exc).splitlines()[0]}")
    current = state.snapshot_hash == view.policy_hash
    nxt = min(
        (d for d in state.deadlines if d.kind in ("escalate", "ack_timeout", "snooze_end")),
        key=lambda d: d.due_at,
        default=None,
    )
    next_escalation = (
        {"at": nxt.due_at.isoformat(), "kind": nxt.kind, "level": nxt.level}
        if nxt is not None and nxt.due_at > now
        else None
    )
    sla = []
    for clock in state.sla:
        pending = sorted(
            (d for d in state.deadlines if d.kind == "sla" and d.clock == clock.clock), key=lambda d: d.due_at
        )
        breach = next((d for d in pending if d.fraction == 1.0), None)
        running = clock.running_since is not None and not clock.stopped
        used = clock.consumed + (now - clock.running_since if running and clock.running_since else timedelta(0))
        sla.append(
            {
                "clock": clock.clock,
                "target_seconds": clock.target.total_seconds(),
                "elapsed_seconds": max(0.0, used.total_seconds()),
                "breach_at": breach.due_at.isoformat() if breach is not None else None,
                "breached": 1.0 in clock.announced,
                "warned": [f for f in clock.announced if f < 1.0],
                "stopped": clock.stopped,
                "paused": state.sla_paused and not clock.stopped,
            }
        )
    note = None if current else "the policy changed since the incident opened: clocks follow the current policy"
    return Clocks(next_escalation, sla, _iso(state.snoozed_until), current, note)
