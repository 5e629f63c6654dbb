"""`escalation policy simulate` and `replay`: run policies on a virtual clock, compare with history."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.escalator.core.durations import parse_duration
from services.escalator.core.policy import Catalog
from services.escalator.core.simulator import Happened, Simulator
from shared import events as ev
from shared.envelope import Envelope, EnvelopeError, decode
from shared.yamlconfig import ConfigError, load_yaml

COMMAND_MODELS = ev.ACTIONS


# Commands replayed from history; timer firings are not: the candidate policy makes its own.
REPLAYED_COMMANDS = frozenset(t for t, _ in COMMAND_MODELS.values())


class ScriptEvent(BaseModel):
    """One timed command of a simulation script; the other keys are the command's payload."""

    model_config = ConfigDict(extra="allow")

    at: timedelta = Field(description="Offset from the start: '+0m', '+1h30m'.")
    action: Literal[
        "trigger", "acknowledge", "resolve", "escalate", "snooze", "reassign", "note", "pause_sla", "resume_sla"
    ]

    @field_validator("at", mode="before")
    @classmethod
    def _offset(cls, value: Any) -> timedelta:
        return parse_duration(value.lstrip("+") if isinstance(value, str) else value)


class Script(BaseModel):
    """A simulation script: when it starts, what happens, how long to watch afterwards."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    watch: timedelta = Field(timedelta(hours=4), description="Time simulated after the last event.")
    events: list[ScriptEvent] = Field(min_length=1)

    @field_validator("watch", mode="before")
    @classmethod
    def _watch(cls, value: Any) -> timedelta:
        return parse_duration(value)


def load_script(path: Path) -> Script:
    """Read a script file; errors name the file, line and field."""
    doc = load_yaml(path)
    try:
        script = Script.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.error(exc) from exc
    for index, item in enumerate(script.events):
        _, model = COMMAND_MODELS[item.action]
        try:
            model.model_validate(item.model_extra or {})
        except ValidationError as exc:
            raise doc.error(exc, ("events", index)) from exc
    return script


@dataclass
class SimulationResult:
    """The simulator after a run, and the script's start."""

    sim: Simulator
    start: datetime


def simulate(catalog: Catalog, script: Script) -> SimulationResult:
    """Run a script against a catalog on a virtual clock."""
    sim = Simulator(catalog, script.start)
    for item in sorted(script.events, key=lambda e: e.at):
        type_, model = COMMAND_MODELS[item.action]
        sim.send(type_, model.model_validate(item.model_extra or {}), at=script.start + item.at)
    sim.advance_to(script.start + max(e.at for e in script.events) + script.watch)
    return SimulationResult(sim, script.start)


def describe(h: Happened) -> str:
    """One readable line of detail for an emitted event."""
    p = h.payload
    if h.type == ev.ESCALATION_STEP_REACHED:
        who = ", ".join(t.get("name") or t.get("id") or t.get("url") or t["type"] for t in p["targets"])
        return f"level {p['level']} {p.get('level_name') or ''} ({p['kind']}, {p['reason']}) -> {who}"
    if h.type in (ev.SLA_WARNING, ev.SLA_BREACHED):
        return f"{p['clock']} {int(p['fraction'] * 100)}% of {timedelta(seconds=p['target_seconds'])} ({p['priority']})"
    if h.type == ev.INCIDENT_OPENED:
        rule = f", rule '{p['rule']}'" if p.get("rule") else ""
        return f"{p['summary']} [{p['severity']}, {p['priority']}, policy {p['policy_id']}{rule}]"
    keep = {k: v for k, v in p.items() if v not in (None, "", [], {})}
    return json.dumps(keep, default=str) if keep else ""


def timeline_rows(result: SimulationResult) -> list[tuple[str, str, str, str]]:
    """(offset, incident key, event type, detail) for every emitted event, in order."""
    return [(f"+{h.at - result.start}", h.incident_key, h.type, describe(h)) for h in result.sim.timeline]


# --- replay ---------------------------------------------------------------------------------------


@dataclass
class IncidentHistory:
    """What history says happened to one incident: its commands and the pages it caused."""

    incident_id: str
    incident_key: str
    commands: list[Envelope] = field(default_factory=list)
    pages: list[tuple[datetime, int, str]] = field(default_factory=list)  # (at, level, targets)
    opened_at: datetime | None = None
    acknowledged_at: datetime | None = None


def read_history(lines: Iterable[str], source: Path) -> list[IncidentHistory]:
    """Group an audit export (one envelope per JSONL line) into incidents."""
    commands_by_key: dict[str, list[Envelope]] = {}
    incidents: dict[str, IncidentHistory] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            env = decode(json.dumps({k: raw[k] for k in Envelope.model_fields if k in raw}).encode())
        except (json.JSONDecodeError, EnvelopeError, TypeError) as exc:
            raise ConfigError(source, number, "", f"not an exported envelope: {exc}") from exc
        if (
            env.type in ev.PAYLOADS
            and env.type.startswith("incident.")
            and env.type in {t for t, _ in COMMAND_MODELS.values()}
        ):
            commands_by_key.setdefault(env.incident_key, []).append(env)
        if env.incident_id is None:
            continue
        inc = incidents.setdefault(str(env.incident_id), IncidentHistory(str(env.incident_id), env.incident_key))
        if env.type == ev.INCIDENT_OPENED:
            inc.opened_at = env.occurred_at
        elif env.type == ev.INCIDENT_ACKNOWLEDGED and inc.acknowledged_at is None:
            inc.acknowledged_at = env.occurred_at
        elif env.type == ev.ESCALATION_STEP_REACHED:
            step = env.payload_as(ev.EscalationStepReached)
            inc.pages.append((step.due_at or env.occurred_at, step.level, ", ".join(t.label for t in step.targets)))
    # Commands belong to the incident open for their key at their time: from its opening trigger on.
    for inc in incidents.values():
        if inc.opened_at is None:
            continue
        later_openings = sorted(
            o.opened_at
            for o in incidents.values()
            if o.incident_key == inc.incident_key and o.opened_at and o.opened_at > inc.opened_at
        )
        until = later_openings[0] if later_openings else None
        inc.commands = [
            c
            for c in sorted(commands_by_key.get(inc.incident_key, []), key=lambda c: c.occurred_at)
            if (str(c.event_id) == inc.incident_id or c.occurred_at >= inc.opened_at)
            and (until is None or c.occurred_at < until)
        ]
    return sorted((i for i in incidents.values() if i.commands), key=lambda i: i.opened_at or datetime.max)


@dataclass(frozen=True)
class ReplayOutcome:
    """History next to what the candidate policy would have done, for one incident."""

    incident: IncidentHistory
    candidate_pages: list[tuple[datetime, int, str]]
    candidate_ack: datetime | None


def replay(
    catalog: Catalog, history: list[IncidentHistory], watch: timedelta = timedelta(hours=4)
) -> list[ReplayOutcome]:
    """Run each incident's recorded commands, at their recorded instants, against `catalog`."""
    out = []
    for inc in history:
        first = inc.commands[0].occurred_at
        sim = Simulator(catalog, first)
        for cmd in inc.commands:
            sim.advance_to(cmd.occurred_at)
            _, model = next((t, m) for t, m in COMMAND_MODELS.values() if t == cmd.type)
            sim.send(cmd.type, cmd.payload_as(model), at=cmd.occurred_at)
        sim.advance_to(inc.commands[-1].occurred_at + watch)
        pages = [
            (
                h.at,
                int(h.payload["level"]),
                ", ".join(t.get("name") or t.get("id") or t["type"] for t in h.payload["targets"]),
            )
            for h in sim.steps(inc.incident_key)
        ]
        acks = sim.events(ev.INCIDENT_ACKNOWLEDGED, inc.incident_key)
        out.append(ReplayOutcome(inc, pages, acks[0].at if acks else None))
    return out
