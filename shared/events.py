"""Message types and their payload models: commands are verbs, events are past-tense facts."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from shared.envelope import Envelope, EnvelopeError


class Severity(StrEnum):
    """Severity as PagerDuty Events v2 names it."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


MAX_JSON_DEPTH = 64
"""How deeply a free-form object (custom_details) may nest; pydantic stops writing JSON at 255 levels."""


def _where(path: tuple[str | int, ...]) -> str:
    # Keys are user input: escaped, so that the error message can itself be written as JSON.
    return ".".join(str(p) for p in path).encode("utf-8", "backslashreplace").decode() or "(the object)"


def _json_writable(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse what no JSON encoder downstream writes back as sent: a lone surrogate (in a key or a
    string), NaN or Infinity (written as null), nesting deeper than MAX_JSON_DEPTH."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) >= MAX_JSON_DEPTH:
            raise PydanticCustomError("json_depth", "Nested deeper than {limit} levels", {"limit": MAX_JSON_DEPTH})
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise PydanticCustomError(
                    "string_unicode",
                    "Lone surrogate at {where}; strings must be valid Unicode",
                    {"where": _where(path)},
                ) from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise PydanticCustomError("finite_number", "{where} should be a finite number", {"where": _where(path)})
        elif isinstance(item, dict):
            for key, member in item.items():
                stack.append((key, (*path, key)))
                stack.append((member, (*path, key)))
        elif isinstance(item, list):
            stack.extend((member, (*path, i)) for i, member in enumerate(item))
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_writable)]
"""A free-form JSON object that can be written as JSON again exactly as received."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- commands (topic incidents.commands) -------------------------------------------------------

TRIGGER = "incident.trigger"
ACKNOWLEDGE = "incident.acknowledge"
RESOLVE = "incident.resolve"
TIMER_FIRED = "timer.fired"
ESCALATE = "incident.escalate"
SNOOZE = "incident.snooze"
REASSIGN = "incident.reassign"
ADD_NOTE = "incident.add_note"
PAUSE_SLA = "incident.pause_sla"
RESUME_SLA = "incident.resume_sla"
HEARTBEAT_PING = "heartbeat.ping"


class Link(_Payload):
    """A link a monitoring system attached (runbook, dashboard, the alert's source)."""

    href: str = Field(min_length=1, max_length=2048, examples=["https://grafana.example.com/d/db"])
    text: str | None = Field(None, max_length=1024)


class Image(_Payload):
    """An image a monitoring system attached (a graph)."""

    src: str = Field(min_length=1, max_length=2048)
    href: str | None = Field(None, max_length=2048)
    alt: str | None = Field(None, max_length=1024)


class Trigger(_Payload):
    """A monitoring system reports a problem; opens an incident or counts as a duplicate."""

    service: str = Field(min_length=1, max_length=255, examples=["checkout-api"])
    dedup_key: str = Field(min_length=1, max_length=255, examples=["disk-full-db1"])
    summary: str = Field(min_length=1, max_length=1024, examples=["Disk 95% full on db1"])
    severity: Severity = Field(Severity.ERROR, examples=["critical"])
    source: str | None = Field(None, max_length=255, examples=["db1.prod"])
    priority: str | None = Field(None, pattern=r"^P[1-5]$", description="P1..P5; else derived.")
    custom_details: JsonObject = Field(default_factory=dict)
    component: str | None = Field(None, max_length=255, description="Part of the source that is affected.")
    group: str | None = Field(None, max_length=255, description="Logical grouping of components.")
    event_class: str | None = Field(None, max_length=255, description="Class or type of the event.")
    timestamp: AwareDatetime | None = Field(None, description="When the monitoring system detected it.")
    links: list[Link] = Field(default_factory=list, max_length=100)
    images: list[Image] = Field(default_factory=list, max_length=100)
    client: str | None = Field(None, max_length=255, description="The monitoring system's name.")
    client_url: str | None = Field(None, max_length=2048, description="The monitoring system's page of it.")
    integration: str | None = Field(None, max_length=64, description="Which intake API it came through.")


class Acknowledge(_Payload):
    """Somebody is working on the incident: stop escalating."""

    service: str = Field(min_length=1, max_length=255)
    dedup_key: str = Field(min_length=1, max_length=255)
    actor: str | None = Field(None, max_length=255, examples=["alice"])


class Resolve(_Payload):
    """The problem is gone: close the incident and stop every clock."""

    service: str = Field(min_length=1, max_length=255)
    dedup_key: str = Field(min_length=1, max_length=255)
    actor: str | None = Field(None, max_length=255, examples=["alice"])


class _OperatorCommand(_Payload):
    service: str = Field(min_length=1, max_length=255)
    dedup_key: str = Field(min_length=1, max_length=255)
    actor: str | None = Field(None, max_length=255, examples=["alice"])


class EscalateNow(_OperatorCommand):
    """Escalate at once: to the next level, or to a chosen one."""

    to_level: int | None = Field(None, ge=1, description="Level to reach; the next one when absent.")


class Snooze(_OperatorCommand):
    """Silence an incident for a while; it re-triggers when the snooze ends."""

    duration_seconds: float = Field(gt=0, le=7 * 86400)


class Reassign(_OperatorCommand):
    """Hand the incident to another escalation policy or team; escalation restarts there."""

    policy: str | None = Field(None, min_length=1)
    team: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_destination(self) -> Reassign:
        if (self.policy is None) == (self.team is None):
            raise ValueError("give exactly one of policy or team")
        return self


class AddNote(_OperatorCommand):
    """Attach a note to the incident's history."""

    text: str = Field(min_length=1, max_length=10_000)


class PauseSla(_OperatorCommand):
    """Stop the SLA clocks (e.g. waiting on the customer)."""

    reason: str | None = Field(None, max_length=1024)


class ResumeSla(_OperatorCommand):
    """Restart paused SLA clocks."""


class TimerFired(_Payload):
    """A deadline the escalator set has come; ignored when its token is stale."""

    token: int = Field(ge=0, description="Token of the timer; must equal the incident's current one.")
    due_at: AwareDatetime


# --- events (topic escalations.events) ---------------------------------------------------------

INCIDENT_OPENED = "incident.opened"
INCIDENT_DEDUPLICATED = "incident.deduplicated"
INCIDENT_ACKNOWLEDGED = "incident.acknowledged"
INCIDENT_RESOLVED = "incident.resolved"
ESCALATION_STEP_REACHED = "escalation.step_reached"
INCIDENT_REOPENED = "incident.reopened"
INCIDENT_SNOOZED = "incident.snoozed"
INCIDENT_REASSIGNED = "incident.reassigned"
INCIDENT_NOTE_ADDED = "incident.note_added"
ESCALATION_HELD = "escalation.held"
ESCALATION_EXHAUSTED = "escalation.exhausted"
SLA_WARNING = "sla.warning"
SLA_BREACHED = "sla.breached"
SLA_PAUSED = "sla.paused"
SLA_RESUMED = "sla.resumed"


TargetType = Literal["webhook", "user", "team", "schedule", "email", "slack", "msteams"]
_NEEDS_URL = {"webhook", "slack", "msteams"}


class Target(_Payload):
    """Who or what a level notifies: an endpoint (url) or a directory entry (id)."""

    type: TargetType = Field(description="Target kind.")
    id: str | None = Field(None, description="User, team or schedule id, or an email address.")
    url: str | None = Field(None, description="Endpoint of webhook, Slack and Teams targets.")
    name: str | None = Field(None, description="Display name, e.g. the team.", examples=["infrastructure"])

    @model_validator(mode="after")
    def _addressable(self) -> Target:
        if self.type in _NEEDS_URL and not self.url:
            raise ValueError(f"a {self.type} target needs a url")
        if self.type not in _NEEDS_URL and not self.id:
            raise ValueError(f"a {self.type} target needs an id")
        return self

    @property
    def label(self) -> str:
        """A readable name for logs and timelines."""
        return self.name or self.id or self.url or self.type


class IncidentOpened(_Payload):
    """An incident was opened with its policy frozen in."""

    service: str
    dedup_key: str
    summary: str
    severity: Severity
    policy_id: str
    policy_hash: str = Field(description="SHA-256 of the policy snapshot frozen into the incident.")
    priority: str = Field(examples=["P1"])
    rule: str | None = Field(None, description="Name of the policy rule that matched the trigger.")


class IncidentDeduplicated(_Payload):
    """A trigger for an open incident was folded into it."""

    count: int = Field(ge=2, description="Triggers received for the incident so far.")


class IncidentAcknowledged(_Payload):
    """Somebody acknowledged the incident; escalation stops."""

    actor: str | None = None


class IncidentResolved(_Payload):
    """The incident was resolved; every clock stops."""

    actor: str | None = None


class EscalationStepReached(_Payload):
    """The incident reached an escalation level; its targets are to be notified."""

    step_id: uuid.UUID = Field(description="Deterministic id of (incident, level, cycle).")
    level: int = Field(ge=1)
    cycle: int = Field(ge=0, description="How many times the policy has looped before this step.")
    level_name: str | None = None
    kind: Literal["functional", "hierarchical"] = "functional"
    reason: Literal["timeout", "opened", "rule", "escalate_now", "reopened", "repeat", "reassigned"] = "timeout"
    targets: list[Target]
    service: str
    summary: str
    severity: Severity
    priority: str = "P3"
    policy_id: str = ""
    due_at: AwareDatetime | None = Field(
        None, description="The instant the policy set for this step; occurred_at is when it was taken."
    )


class IncidentReopened(_Payload):
    """An incident went back to triggered: acknowledged or snoozed, or resolved and flapping."""

    reason: Literal["ack_timeout", "snooze_ended", "escalate_now", "reassigned", "flapping"]
    count: int | None = Field(
        None, description="For `flapping`: triggers received for the incident so far (no new page is sent)."
    )


class IncidentSnoozed(_Payload):
    """Escalation is silenced until the given instant."""

    until: AwareDatetime
    actor: str | None = None


class IncidentReassigned(_Payload):
    """The incident now follows another policy (snapshot frozen anew)."""

    policy_id: str
    policy_hash: str
    team: str | None = None
    actor: str | None = None


class NoteAdded(_Payload):
    """Somebody wrote a note on the incident."""

    text: str
    actor: str | None = None


class EscalationHeld(_Payload):
    """A step fell in a maintenance window; it is reached when the window ends."""

    level: int = Field(ge=1)
    until: AwareDatetime
    reason: str | None = None


class EscalationExhausted(_Payload):
    """The last level (and every repeat) was reached without acknowledgement."""

    level: int = Field(ge=1)
    cycle: int = Field(ge=0)


class SlaEvent(_Payload):
    """An SLA clock crossed a warning fraction or its target (fraction 1.0)."""

    clock: Literal["acknowledge", "resolve"]
    fraction: float = Field(gt=0, le=1)
    target_seconds: float = Field(gt=0)
    priority: str


class SlaPauseChange(_Payload):
    """SLA clocks were paused or resumed."""

    actor: str | None = None
    reason: str | None = None


# --- notification results (topic notifications.results) ----------------------------------------

NOTIFICATION_DELIVERED = "notification.delivered"
NOTIFICATION_FAILED = "notification.failed"


class NotificationResult(_Payload):
    """One delivery attempt of one step to one target over one channel, and its outcome."""

    step_id: uuid.UUID
    idempotency_key: uuid.UUID = Field(description="Deterministic id of (step, target, channel).")
    channel: str = Field(examples=["webhook"])
    target: Target
    attempt: int = Field(ge=1)
    status_code: int | None = None
    error: str | None = None
    final: bool = Field(description="True when no further attempt will be made.")


class HeartbeatPing(_Payload):
    """A monitored job is alive; without another ping within `interval_seconds`, an incident opens
    on its service (a dead man's switch). The first ping starts the watch."""

    name: str = Field(min_length=1, max_length=255, examples=["nightly-backup"])
    service: str = Field(min_length=1, max_length=255)
    interval_seconds: float = Field(gt=0, le=30 * 86400)
    severity: Severity = Field(Severity.CRITICAL, description="Severity of the incident a missed ping opens.")
    summary: str | None = Field(None, max_length=1024, description="Summary of that incident (else generated).")
    actor: str | None = Field(None, max_length=255, description="Who pinged (the token's name).")


PAYLOADS: dict[str, type[BaseModel]] = {
    TRIGGER: Trigger,
    ACKNOWLEDGE: Acknowledge,
    RESOLVE: Resolve,
    TIMER_FIRED: TimerFired,
    ESCALATE: EscalateNow,
    SNOOZE: Snooze,
    REASSIGN: Reassign,
    ADD_NOTE: AddNote,
    PAUSE_SLA: PauseSla,
    RESUME_SLA: ResumeSla,
    HEARTBEAT_PING: HeartbeatPing,
    INCIDENT_OPENED: IncidentOpened,
    INCIDENT_DEDUPLICATED: IncidentDeduplicated,
    INCIDENT_ACKNOWLEDGED: IncidentAcknowledged,
    INCIDENT_RESOLVED: IncidentResolved,
    ESCALATION_STEP_REACHED: EscalationStepReached,
    INCIDENT_REOPENED: IncidentReopened,
    INCIDENT_SNOOZED: IncidentSnoozed,
    INCIDENT_REASSIGNED: IncidentReassigned,
    INCIDENT_NOTE_ADDED: NoteAdded,
    ESCALATION_HELD: EscalationHeld,
    ESCALATION_EXHAUSTED: EscalationExhausted,
    SLA_WARNING: SlaEvent,
    SLA_BREACHED: SlaEvent,
    SLA_PAUSED: SlaPauseChange,
    SLA_RESUMED: SlaPauseChange,
    NOTIFICATION_DELIVERED: NotificationResult,
    NOTIFICATION_FAILED: NotificationResult,
}

# Command of each action name, as the native API and simulation scripts spell actions.
ACTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "trigger": (TRIGGER, Trigger),
    "acknowledge": (ACKNOWLEDGE, Acknowledge),
    "resolve": (RESOLVE, Resolve),
    "escalate": (ESCALATE, EscalateNow),
    "snooze": (SNOOZE, Snooze),
    "reassign": (REASSIGN, Reassign),
    "note": (ADD_NOTE, AddNote),
    "pause_sla": (PAUSE_SLA, PauseSla),
    "resume_sla": (RESUME_SLA, ResumeSla),
}

# Current schema version of each type; a bump comes with an upcaster from the previous version.
VERSIONS: dict[str, int] = dict.fromkeys(PAYLOADS, 1)

# (type, from_version) -> function turning that payload into the next version's payload.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def current_version(type_: str) -> int:
    """Return the schema version new messages of this type are written with."""
    return VERSIONS.get(type_, 1)


def upcast(env: Envelope) -> Envelope:
    """Return the envelope with its payload raised to the current version of its type."""
    target = current_version(env.type)
    payload, version = env.payload, env.schema_version
    if version > target:
        raise EnvelopeError(f"schema_version: {version} is newer than this build knows ({target})")
    while version < target:
        step = UPCASTERS.get((env.type, version))
        if step is None:
            raise EnvelopeError(f"schema_version: no upcaster for {env.type} v{version}")
        payload, version = step(payload), version + 1
    if version == env.schema_version:
        return env
    return env.model_copy(update={"payload": payload, "schema_version": version})


def validate_payload(env: Envelope) -> BaseModel:
    """Validate the payload against its type's model; unknown types are rejected."""
    model = PAYLOADS.get(env.type)
    if model is None:
        raise EnvelopeError(f"type: unknown message type {env.type!r}")
    return model.model_validate(env.payload)
