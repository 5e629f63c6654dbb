"""The one message envelope every topic carries, and its Kafka encoding."""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.ids import uuid7

P = TypeVar("P", bound=BaseModel)

KafkaHeaders = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A message could not be read as an envelope; the reason says why."""


class Envelope(BaseModel):
    """A fact or command on a topic, with the ids that tie it to an incident and its causes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(description="UUIDv7 of this message; unique across all topics.")
    type: str = Field(description="Message type.", examples=["incident.trigger"])
    schema_version: int = Field(1, ge=1, description="Version of the payload schema of `type`.")
    occurred_at: AwareDatetime = Field(description="When the fact happened or the command was given.")
    incident_key: str = Field(
        description="Kafka key: service and dedup key of the incident.",
        examples=["checkout-api/disk-full-db1"],
    )
    incident_id: uuid.UUID | None = Field(
        None, description="The incident this message belongs to, once the escalator opened it."
    )
    causation_id: uuid.UUID | None = Field(None, description="event_id of the message that caused this one.")
    correlation_id: uuid.UUID | None = Field(
        None, description="Id shared by every message of one flow (the originating request)."
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="Type-specific body.")

    def payload_as(self, model: builtins.type[P]) -> P:
        """Return the payload validated as `model`."""
        return model.model_validate(self.payload)

    def to_json(self) -> bytes:
        """Return the canonical JSON bytes of this envelope."""
        return self.model_dump_json().encode()

    def kafka_headers(self) -> KafkaHeaders:
        """Return the Kafka headers that repeat the type and version for routing without parsing."""
        return [
            ("type", self.type.encode()),
            ("schema_version", str(self.schema_version).encode()),
            ("event_id", str(self.event_id).encode()),
        ]


def new_envelope(
    type_: str,
    payload: BaseModel,
    *,
    incident_key: str,
    occurred_at: datetime,
    incident_id: uuid.UUID | None = None,
    cause: Envelope | None = None,
    event_id: uuid.UUID | None = None,
    schema_version: int | None = None,
) -> Envelope:
    """Build an envelope; a cause passes on its correlation id and becomes the causation id."""
    from shared.events import current_version

    correlation = None
    if cause is not None:
        correlation = cause.correlation_id or cause.event_id
    eid = event_id or uuid7()
    return Envelope(
        event_id=eid,
        type=type_,
        schema_version=schema_version or current_version(type_),
        occurred_at=occurred_at,
        incident_key=incident_key,
        incident_id=incident_id,
        causation_id=cause.event_id if cause is not None else None,
        correlation_id=correlation or eid,
        payload=payload.model_dump(mode="json"),
    )


def decode(
    value: bytes | None, headers: Sequence[tuple[str, bytes]] | None = None, *, check_payload: bool = True
) -> Envelope:
    """Parse Kafka value bytes into an envelope, upcasting old payload versions.

    Raises EnvelopeError with a readable reason for anything that is not a valid envelope. With
    `check_payload=False` (the audit log, which records what was sent) the payload is upcast but not
    validated against its type's model, and parsing takes pydantic's faster JSON path.
    """
    from shared.events import upcast, validate_payload

    del headers  # the body is authoritative; headers only help routing
    if value is None:
        raise EnvelopeError("empty message (tombstone)")
    if not check_payload:
        try:
            return upcast(Envelope.model_validate_json(value))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EnvelopeError(f"{where + ': ' if where else ''}{first['msg']}") from exc
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EnvelopeError("not a JSON object")
    try:
        env = Envelope.model_validate(raw)
        env = upcast(env)
        validate_payload(env)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise EnvelopeError(f"{where}: {first['msg']}") from exc
    return env
