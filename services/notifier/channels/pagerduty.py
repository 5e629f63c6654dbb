"""Forward to a PagerDuty-compatible endpoint as an Events v2 `trigger`, for hybrid setups."""

from __future__ import annotations

from services.notifier.channels._json import dumps
from services.notifier.channels.base import Notification
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.templates import Templates
from services.notifier.outcome import DeliveryOutcome

DEFAULT_URL = "https://events.pagerduty.com"


class PagerDutyChannel:
    """POSTs `{base_url}/v2/enqueue`; the address is the routing (integration) key.

    The dedup key is the incident key, so every level and retry of one incident lands on one
    PagerDuty incident.
    """

    name = "pagerduty"

    def __init__(self, client: HttpPoster, templates: Templates, base_url: str = DEFAULT_URL) -> None:
        self._client = client
        self._templates = templates
        self._url = base_url.rstrip("/") + "/v2/enqueue"

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """POST once; Events v2 answers 202, 400 for an invalid event, 429 when throttled."""
        body = dumps(self._templates.pagerduty(note, routing_key=address))
        return await self._client.post_json(self._url, body, {"Idempotency-Key": note.idempotency_key})
