"""Message types and their payload models: commands are verbs, events are past-tense facts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.envelope import Envelope, EnvelopeError


class Severity(StrEnum):
    """Severity as PagerDuty Events v2 names it."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- commands (topic incidents.commands) -------------------------------------------------------

TRIGGER = "incident.trigger"
ACKNOWLEDGE = "incident.acknowledge"
RESOLVE = "incident.resolve"
TIMER_FIRED = "timer.fired"


class Trigger(_Payload):
    """A monitoring system reports a problem; opens an incident or counts as a duplicate."""

    service: str = Field(min_length=1, max_length=255, examples=["checkout-api"])
    dedup_key: str = Field(min_length=1, max_length=255, examples=["disk-full-db1"])
    summary: str = Field(min_length=1, max_length=1024, examples=["Disk 95% full on db1"])
    severity: Severity = Field(Severity.ERROR, examples=["critical"])
    source: str | None = Field(None, max_length=255, examples=["db1.prod"])
    custom_details: dict[str, Any] = Field(default_factory=dict)


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


class Target(_Payload):
    """Who or what a level notifies."""

    type: Literal["webhook"] = Field(description="Target kind.")
    url: str = Field(description="Where a webhook target is POSTed.", examples=["http://127.0.0.1:9000/hook"])
    name: str | None = Field(None, description="Display name, e.g. the team.", examples=["infrastructure"])


class IncidentOpened(_Payload):
    """An incident was opened with its policy frozen in."""

    service: str
    dedup_key: str
    summary: str
    severity: Severity
    policy_id: str
    policy_hash: str = Field(description="SHA-256 of the policy snapshot frozen into the incident.")


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
    targets: list[Target]
    service: str
    summary: str
    severity: Severity


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


PAYLOADS: dict[str, type[BaseModel]] = {
    TRIGGER: Trigger,
    ACKNOWLEDGE: Acknowledge,
    RESOLVE: Resolve,
    TIMER_FIRED: TimerFired,
    INCIDENT_OPENED: IncidentOpened,
    INCIDENT_DEDUPLICATED: IncidentDeduplicated,
    INCIDENT_ACKNOWLEDGED: IncidentAcknowledged,
    INCIDENT_RESOLVED: IncidentResolved,
    ESCALATION_STEP_REACHED: EscalationStepReached,
    NOTIFICATION_DELIVERED: NotificationResult,
    NOTIFICATION_FAILED: NotificationResult,
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
