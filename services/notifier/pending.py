"""Deliveries that wait, as records on the notifier's own topic `notifications.pending`.

A delivery waits when a notification rule delays it, or when an attempt failed and the next one is
due after a backoff. Instead of a sleeping task (lost in a crash, and holding up the escalation
events behind it), the wait is written to Kafka, keyed by the incident key: the deferred loop
(`deferred.py`) holds each record until it is due and commits past it only once it was attempted,
so waits survive a crash and a failing receiver never delays anybody else's page.

An acknowledge or resolve writes a `Settled` record to the same partition, after every wait of the
incident: the waits before it are dropped (nobody is paged about an incident somebody has taken).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

import orjson

from services.notifier.routing import Send
from shared import events as ev
from shared.envelope import Envelope, decode

VERSION = 1


class PendingError(ValueError):
    """A record of notifications.pending that cannot be read."""


@dataclass(frozen=True)
class PendingSend:
    """One delivery (of one step, to one address on one channel) and the attempt it is at."""

    step: Envelope  # the escalation.step_reached event
    send: Send
    attempt: int
    not_before: datetime

    @property
    def incident_id(self) -> uuid.UUID | None:
        """The incident the step belongs to."""
        return self.step.incident_id

    @cached_property
    def reached(self) -> ev.EscalationStepReached:
        """The step's payload, validated once per delivery (it was validated three times)."""
        return self.step.payload_as(ev.EscalationStepReached)

    @cached_property
    def key(self) -> str:
        """The notification's idempotency key."""
        return self.send.idempotency_key(self.reached.step_id)

    def retry(self, not_before: datetime) -> PendingSend:
        """The next attempt, due at `not_before`."""
        return replace(self, attempt=self.attempt + 1, not_before=not_before)


@dataclass(frozen=True)
class Settled:
    """The incident was acknowledged or resolved: its waits written before this record are void."""

    incident_id: uuid.UUID
    incident_key: str
    at: datetime


Pending = PendingSend | Settled


def incident_key_of(record: Pending) -> str:
    """The Kafka key of a record: its incident's key, so an incident's waits share one partition."""
    return record.incident_key if isinstance(record, Settled) else record.step.incident_key


def encode(record: Pending) -> bytes:
    """The JSON of a record."""
    if isinstance(record, Settled):
        fields = {"incident_id": str(record.incident_id), "incident_key": record.incident_key, "at": record.at}
        return orjson.dumps({"v": VERSION, "kind": "settled", **fields})
    send = record.send
    return orjson.dumps(
        {
            "v": VERSION,
            "kind": "send",
            "step": orjson.loads(record.step.to_json()),
            "target": send.target.model_dump(mode="json", exclude_none=True),
            "channel": send.channel,
            "address": send.address,
            "recipient": send.recipient,
            "delay_seconds": send.delay.total_seconds(),
            "attempt": record.attempt,
            "not_before": record.not_before,
        }
    )


def decode_pending(value: bytes | None) -> Pending:
    """Read a record; PendingError for anything else."""
    try:
        data = orjson.loads(value or b"")
        if data.get("v") != VERSION:
            raise PendingError(f"unknown version {data.get('v')!r}")
        if data["kind"] == "settled":
            at = datetime.fromisoformat(data["at"])
            return Settled(uuid.UUID(data["incident_id"]), str(data["incident_key"]), at)
        send = Send(
            target=ev.Target.model_validate(data["target"]),
            channel=str(data["channel"]),
            address=str(data["address"]),
            recipient=str(data["recipient"]),
            delay=timedelta(seconds=float(data["delay_seconds"])),
        )
        step = decode(orjson.dumps(data["step"]))
        return PendingSend(step, send, int(data["attempt"]), datetime.fromisoformat(data["not_before"]))
    except PendingError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PendingError(f"unreadable pending record: {exc!r}") from exc
