"""Request and response bodies of the intake's native API."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Severity
from shared.ids import SERVICE_PATTERN


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(
        min_length=1,
        max_length=255,
        pattern=SERVICE_PATTERN,
        description="Service id (no '/': it begins the incident key `service/dedup_key`).",
        examples=["checkout-api"],
    )


class TriggerEvent(_Body):
    """Report a problem; the same dedup key while open counts as a duplicate."""

    event_action: Literal["trigger"]
    dedup_key: str | None = Field(None, min_length=1, max_length=255, description="Generated and returned when absent.")
    summary: str = Field(min_length=1, max_length=1024, examples=["Disk 95% full on db1"])
    severity: Severity = Field(Severity.ERROR)
    source: str | None = Field(None, max_length=255)
    custom_details: dict[str, Any] = Field(default_factory=dict)


class AcknowledgeEvent(_Body):
    """Stop escalating the open incident with this dedup key."""

    event_action: Literal["acknowledge"]
    dedup_key: str = Field(min_length=1, max_length=255)
    actor: str | None = Field(None, max_length=255)


class ResolveEvent(_Body):
    """Close the open incident with this dedup key."""

    event_action: Literal["resolve"]
    dedup_key: str = Field(min_length=1, max_length=255)
    actor: str | None = Field(None, max_length=255)


class _OperatorAction(_Body):
    dedup_key: str = Field(min_length=1, max_length=255)
    actor: str | None = Field(None, max_length=255, description="Who did it (recorded in the history).")


class EscalateEvent(_OperatorAction):
    """Escalate now: to the next level, or to `to_level`."""

    event_action: Literal["escalate"]
    to_level: int | None = Field(None, ge=1)


class SnoozeEvent(_OperatorAction):
    """Silence an acknowledged incident; it re-triggers when the snooze ends."""

    event_action: Literal["snooze"]
    duration_seconds: float = Field(gt=0, le=7 * 86400)


class ReassignEvent(_OperatorAction):
    """Hand the incident to another policy or team (give exactly one)."""

    event_action: Literal["reassign"]
    policy: str | None = Field(None, min_length=1)
    team: str | None = Field(None, min_length=1)


class NoteEvent(_OperatorAction):
    """Add a note to the incident's history."""

    event_action: Literal["note"]
    text: str = Field(min_length=1, max_length=10_000)


class PauseSlaEvent(_OperatorAction):
    """Pause the SLA clocks (e.g. waiting on the customer)."""

    event_action: Literal["pause_sla"]
    reason: str | None = Field(None, max_length=1024)


class ResumeSlaEvent(_OperatorAction):
    """Resume paused SLA clocks."""

    event_action: Literal["resume_sla"]


AnyEvent = (
    TriggerEvent
    | AcknowledgeEvent
    | ResolveEvent
    | EscalateEvent
    | SnoozeEvent
    | ReassignEvent
    | NoteEvent
    | PauseSlaEvent
    | ResumeSlaEvent
)
NativeEvent = Annotated[AnyEvent, Field(discriminator="event_action")]


class Accepted(BaseModel):
    """The event is durably in Kafka."""

    status: Literal["accepted"] = "accepted"
    event_id: uuid.UUID = Field(description="UUIDv7 of the command written to incidents.commands.")
    incident_key: str
    dedup_key: str
