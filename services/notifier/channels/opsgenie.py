"""Forward to an Opsgenie-compatible Alert API, for hybrid setups."""

from __future__ import annotations

from services.notifier.channels._json import dumps
from services.notifier.channels.base import Notification
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.templates import Templates
from services.notifier.outcome import DeliveryOutcome

DEFAULT_URL = "https://api.opsgenie.com"


class OpsgenieChannel:
    """POSTs `{base_url}/v2/alerts` with `Authorization: GenieKey <api_key>`; the address is the
    responder team ("" for the integration's own team). The alias is the incident key, so Opsgenie
    folds every level and retry of one incident into one alert."""

    name = "opsgenie"

    def __init__(self, client: HttpPoster, templates: Templates, api_key: str, base_url: str = DEFAULT_URL) -> None:
        self._client = client
        self._templates = templates
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/v2/alerts"

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """POST once; the Alert API answers 202 (processed asynchronously), 401/403/422 are final."""
        body = dumps(self._templates.opsgenie(note, responder=address))
        headers = {"Authorization": f"GenieKey {self._api_key}", "Idempotency-Key": note.idempotency_key}
        return await self._client.post_json(self._url, body, headers)
