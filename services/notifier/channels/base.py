"""The one small interface every channel adapter implements, and what it is given to send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.notifier.outcome import DeliveryOutcome
from shared.envelope import Envelope
from shared.events import EscalationStepReached, Severity, Target
from shared.links import LinkSigner


@dataclass(frozen=True)
class Notification:
    """Everything a channel needs to tell a target about one escalation step."""

    event_id: uuid.UUID
    event_type: str
    incident_id: uuid.UUID | None
    incident_key: str
    service: str
    summary: str
    severity: Severity
    priority: str
    level: int
    level_name: str | None
    kind: str
    cycle: int
    reason: str
    step_id: uuid.UUID
    idempotency_key: str
    occurred_at: datetime
    target: str
    sla_state: str | None = None
    ack_url: str | None = None
    resolve_url: str | None = None


class Channel(Protocol):
    """One way of delivering a notification: webhook, email, Slack, Teams, PagerDuty, Opsgenie."""

    name: str

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """Try once to deliver `note` to `address`; never raises for delivery failures."""
        ...


def notification_of(
    env: Envelope,
    step: EscalationStepReached,
    target: Target,
    key: str,
    links: LinkSigner | None,
    *,
    sla_state: str | None = None,
    recipient: str | None = None,
) -> Notification:
    """Return the notification of one step for one target; links expire `ttl` after the step.

    Links are derived from the step's instant, not the clock, so every retry sends the same message;
    they are signed for the recipient (the person paged; the target itself for endpoints), whom the
    intake records as the one who acted.
    """
    ack_url = resolve_url = None
    if links is not None and env.incident_id is not None:
        by = recipient or target.label
        ack_url = links.link("acknowledge", env.incident_id, env.occurred_at, by)
        resolve_url = links.link("resolve", env.incident_id, env.occurred_at, by)
    return Notification(
        event_id=env.event_id,
        event_type=env.type,
        incident_id=env.incident_id,
        incident_key=env.incident_key,
        service=step.service,
        summary=step.summary,
        severity=step.severity,
        priority=step.priority,
        level=step.level,
        level_name=step.level_name,
        kind=step.kind,
        cycle=step.cycle,
        reason=step.reason,
        step_id=step.step_id,
        idempotency_key=key,
        occurred_at=env.occurred_at,
        target=target.label,
        sla_state=sla_state,
        ack_url=ack_url,
        resolve_url=resolve_url,
    )
