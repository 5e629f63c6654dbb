"""Microsoft Teams channel: an Adaptive Card message, as Teams incoming webhooks and Workflows accept."""

from __future__ import annotations

from services.notifier.channels._json import dumps
from services.notifier.channels.base import Notification
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.templates import Templates
from services.notifier.outcome import DeliveryOutcome


class TeamsChannel:
    """POSTs to a Teams incoming-webhook or Workflows trigger URL (the URL is the credential)."""

    name = "msteams"

    def __init__(self, client: HttpPoster, templates: Templates) -> None:
        self._client = client
        self._templates = templates

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """POST once; Workflows answer 202, legacy connectors 200."""
        return await self._client.post_json(address, dumps(self._templates.teams(note)))
