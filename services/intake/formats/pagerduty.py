"""PagerDuty Events API v2 (`POST /v2/enqueue`): the body monitoring tools send to PagerDuty.

Format: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (source:
github.com/PagerDuty/developer-docs, docs/events-API-v2/02-Trigger-Events.md) and the OpenAPI
document github.com/PagerDuty/api-schema, reference/events-v2/openapiv3.json.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from services.intake.formats.common import FormatError, ParsedCommand, Timestamp, build
from shared import events as ev

MAX_BODY_BYTES = 512 * 1024
"""PagerDuty's documented limit on a whole request ("Events API payloads are limited to 512 KB")."""

INTEGRATION = "pagerduty"

EventAction = Literal["trigger", "acknowledge", "resolve"]


class _Lenient(BaseModel):
    # PagerDuty ignores members it does not know; so do we.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PagerDutyLink(_Lenient):
    """A text link to attach to the alert."""

    href: str = Field(min_length=1, max_length=2048, examples=["https://example.com/"])
    text: str | None = Field(None, max_length=1024, examples=["Link text"])


class PagerDutyImage(_Lenient):
    """An image to attach to the alert (PagerDuty shows only HTTPS ones)."""

    src: str = Field(min_length=1, max_length=2048)
    href: str | None = Field(None, max_length=2048, description="Makes the image a link.")
    alt: str | None = Field(None, max_length=1024)


class PagerDutyPayload(_Lenient):
    """PD-CEF: what the problem is, where and how bad (required for trigger events)."""

    summary: str = Field(min_length=1, max_length=1024, examples=["Example alert on host1.example.com"])
    source: str = Field(min_length=1, max_length=255, description="Affected system, preferably a hostname.")
    severity: ev.Severity = Field(examples=["critical"])
    timestamp: Timestamp | None = Field(None, description="When the tool detected it (ISO 8601).")
    component: str | None = Field(None, max_length=255, examples=["postgres"])
    group: str | None = Field(None, max_length=255, examples=["prod-datapipe"])
    event_class: str | None = Field(None, alias="class", max_length=255, examples=["deploy"])
    custom_details: ev.JsonObject | None = Field(None, description="Free-form details (a JSON object).")


class PagerDutyEvent(_Lenient):
    """One alert event as PagerDuty's Events API v2 takes it."""

    routing_key: str = Field(min_length=1, max_length=255, description="Integration key (32 characters at PagerDuty).")
    event_action: EventAction
    dedup_key: str | None = Field(
        None, max_length=255, description="Required for acknowledge and resolve; generated for a trigger without."
    )
    payload: PagerDutyPayload | None = Field(None, validate_default=True)
    links: list[PagerDutyLink] = Field(default_factory=list, max_length=100)
    images: list[PagerDutyImage] = Field(default_factory=list, max_length=100)
    client: str | None = Field(None, max_length=255, examples=["Sample Monitoring Service"])
    client_url: str | None = Field(None, max_length=2048, examples=["https://monitoring.example.com"])

    @field_validator("dedup_key", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("payload", "links", "images", "client", "client_url", mode="before")
    @classmethod
    def _trigger_context(cls, value: Any, info: ValidationInfo) -> Any:
        # PagerDuty uses these for triggers only; an acknowledge or resolve may carry anything in them.
        action = info.data.get("event_action")
        if action is None:  # event_action itself is invalid and reported
            return value
        if action != "trigger":
            return [] if info.field_name in ("links", "images") else None
        if info.field_name == "payload" and value is None:
            raise PydanticCustomError("missing", "Field required for a trigger event")
        return value


_FOLLOW_UPS: dict[str, tuple[str, type[BaseModel]]] = {
    "acknowledge": (ev.ACKNOWLEDGE, ev.Acknowledge),
    "resolve": (ev.RESOLVE, ev.Resolve),
}

# Request path of each Trigger field, for errors (the models mirror Trigger's limits, so rarely used).
_TRIGGER_FIELD = {
    "summary": "payload.summary",
    "source": "payload.source",
    "severity": "payload.severity",
    "timestamp": "payload.timestamp",
    "component": "payload.component",
    "group": "payload.group",
    "event_class": "payload.class",
    "custom_details": "payload.custom_details",
}


def to_command(event: PagerDutyEvent, service: str, new_dedup_key: Callable[[], str]) -> ParsedCommand:
    """Translate a validated event into a trigger, acknowledge or resolve command for `service`."""
    if event.event_action in _FOLLOW_UPS:
        if event.dedup_key is None:
            raise FormatError("dedup_key", "Field required for acknowledge and resolve events")
        type_, model = _FOLLOW_UPS[event.event_action]
        payload = build(model, {"service": service, "dedup_key": event.dedup_key, "actor": None}, lambda f: f)
        return ParsedCommand(type_, payload, event.dedup_key)
    p = event.payload
    if p is None:  # only a model built without validation gets here
        raise FormatError("payload", "Field required for a trigger event")
    dedup = event.dedup_key or new_dedup_key()
    fields = {
        "service": service,
        "dedup_key": dedup,
        "summary": p.summary,
        "severity": p.severity,
        "source": p.source,
        "component": p.component,
        "group": p.group,
        "event_class": p.event_class,
        "timestamp": p.timestamp,
        "custom_details": p.custom_details or {},
        "links": [link.model_dump() for link in event.links],
        "images": [image.model_dump() for image in event.images],
        "client": event.client,
        "client_url": event.client_url,
        "integration": INTEGRATION,
    }
    trigger = build(ev.Trigger, fields, lambda f: _TRIGGER_FIELD.get(f, f))
    return ParsedCommand(ev.TRIGGER, trigger, dedup)
