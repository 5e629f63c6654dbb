"""The one small interface every channel adapter implements, and what it is given to send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

from services.notifier.outcome import DeliveryOutcome
from shared.envelope import Envelope
from shared.events import EscalationStepReached, Severity, Target
from shared.links import LinkSigner

RETRYABLE_HTTP = frozenset({408, 425, 429})
"""4xx statuses that mean "later", not "never"; every 5xx is retryable too."""

USER_AGENT = "escalation-notifier/0.1"


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


def http_outcome(response: httpx.Response) -> DeliveryOutcome:
    """Classify an HTTP answer: 2xx delivered; 408/425/429/5xx worth retrying; other codes final."""
    code = response.status_code
    if 200 <= code < 300:
        return DeliveryOutcome(True, False, status_code=code)
    retryable = code in RETRYABLE_HTTP or code >= 500
    return DeliveryOutcome(False, retryable, status_code=code, error=f"HTTP {code}")


def network_outcome(exc: httpx.HTTPError) -> DeliveryOutcome:
    """A request that got no answer (refused, reset, timed out) is worth retrying."""
    return DeliveryOutcome(False, True, error=f"{type(exc).__name__}: {exc}")


async def post_json(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str] | None = None
) -> DeliveryOutcome:
    """POST JSON bytes once and classify the result; what every HTTP channel shares."""
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    try:
        response = await client.post(url, content=body, headers=sent)
    except httpx.HTTPError as exc:
        return network_outcome(exc)
    return http_outcome(response)
