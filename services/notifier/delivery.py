"""Deliver one escalation step to each of its targets, with retries, and report every attempt."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from services.notifier.webhook import DeliveryOutcome, WebhookChannel
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.ids import derived_id
from shared.logging import get_logger

log = get_logger("notifier")

ATTEMPTS = Counter("notifier_attempts_total", "Delivery attempts, by channel and outcome", ["channel", "outcome"])

Report = Callable[[Envelope], Awaitable[None]]


def idempotency_key(step_id: object, target: ev.Target, channel: str) -> str:
    """Return the deterministic key of (step, target, channel): one page per step and target."""
    return str(derived_id("notification", step_id, target.type, target.id, target.url, channel))


def webhook_body(env: Envelope, step: ev.EscalationStepReached, target: ev.Target, key: str) -> dict[str, Any]:
    """Return the JSON a webhook receiver gets."""
    return {
        "type": env.type,
        "event_id": str(env.event_id),
        "incident_id": str(env.incident_id) if env.incident_id else None,
        "incident_key": env.incident_key,
        "occurred_at": env.occurred_at.isoformat(),
        "step_id": str(step.step_id),
        "level": step.level,
        "cycle": step.cycle,
        "service": step.service,
        "summary": step.summary,
        "severity": step.severity.value,
        "target": target.label,
        "level_name": step.level_name,
        "kind": step.kind,
        "priority": step.priority,
        "reason": step.reason,
        "idempotency_key": key,
    }


class Deliverer:
    """Retries each target with exponential backoff and jitter, reporting each attempt."""

    def __init__(self, channel: WebhookChannel, report: Report, max_attempts: int, backoff_base: float) -> None:
        self._channel = channel
        self._report = report
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base

    async def deliver_step(self, env: Envelope) -> None:
        """Deliver an `escalation.step_reached` event to all its targets concurrently."""
        step = env.payload_as(ev.EscalationStepReached)
        await asyncio.gather(*(self._deliver_target(env, step, t) for t in step.targets))

    async def _deliver_target(self, env: Envelope, step: ev.EscalationStepReached, target: ev.Target) -> None:
        key = idempotency_key(step.step_id, target, self._channel.name)
        body = webhook_body(env, step, target, key)
        for attempt in range(1, self._max_attempts + 1):
            if target.type != "webhook" or target.url is None:
                # Directory targets (user, team, schedule) and other channels come with the notifier issue.
                outcome = DeliveryOutcome(False, False, error=f"no channel delivers {target.type} targets yet")
            else:
                outcome = await self._channel.deliver(target.url, body, key)
            final = outcome.delivered or not outcome.retryable or attempt == self._max_attempts
            ATTEMPTS.labels(self._channel.name, "delivered" if outcome.delivered else "failed").inc()
            result = ev.NotificationResult(
                step_id=step.step_id,
                idempotency_key=uuid.UUID(key),
                channel=self._channel.name,
                target=target,
                attempt=attempt,
                status_code=outcome.status_code,
                error=outcome.error,
                final=final,
            )
            kind = ev.NOTIFICATION_DELIVERED if outcome.delivered else ev.NOTIFICATION_FAILED
            await self._report(
                new_envelope(
                    kind,
                    result,
                    incident_key=env.incident_key,
                    occurred_at=datetime.now(UTC),
                    incident_id=env.incident_id,
                    cause=env,
                )
            )
            log.info(
                "delivery attempt",
                outcome=kind,
                attempt=attempt,
                incident_id=str(env.incident_id),
                event_id=str(env.event_id),
                step_id=str(step.step_id),
                status_code=outcome.status_code,
            )
            if final:
                return
            delay = self._backoff_base * (2 ** (attempt - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto
