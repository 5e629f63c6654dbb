"""Slack incoming-webhook channel: a Block Kit message with a plain-text fallback."""

from __future__ import annotations

from services.notifier.channels._json import dumps
from services.notifier.channels.base import Notification
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.templates import Templates
from services.notifier.outcome import DeliveryOutcome


class SlackChannel:
    """POSTs to a Slack incoming-webhook URL (the URL is the credential)."""

    name = "slack"

    def __init__(self, client: HttpPoster, templates: Templates) -> None:
        self._client = client
        self._templates = templates

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """POST once; Slack answers 200 `ok`, 4xx for a bad payload or a revoked URL, 429 when throttled."""
        return await self._client.post_json(address, dumps(self._templates.slack(note)))
