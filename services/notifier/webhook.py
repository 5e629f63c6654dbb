"""Generic webhook channel: POST the step as JSON, carrying its idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt gave: delivered or not, and whether trying again can help."""

    delivered: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None


class WebhookChannel:
    """Delivers notifications to HTTP endpoints."""

    name = "webhook"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def deliver(self, url: str, body: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        """POST once; 2xx is delivered, 408/425/429/5xx and network errors are worth retrying."""
        headers = {"Idempotency-Key": idempotency_key, "User-Agent": "escalation-notifier/0.1"}
        try:
            response = await self._client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            return DeliveryOutcome(False, True, error=f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return DeliveryOutcome(True, False, status_code=code)
        retryable = code in (408, 425, 429) or code >= 500
        return DeliveryOutcome(False, retryable, status_code=code, error=f"HTTP {code}")
