"""Generic webhook channel: JSON signed with HMAC-SHA256 over the timestamp and the exact body bytes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from services.notifier.channels._json import dumps
from services.notifier.channels.base import Notification
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.templates import Templates
from services.notifier.outcome import DeliveryOutcome

SIGNATURE_HEADER = "X-Escalation-Signature"
TIMESTAMP_HEADER = "X-Escalation-Timestamp"
SIGNATURE_PREFIX = "sha256="


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the signature header value: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, header: str, now: datetime, tolerance: float = 300
) -> bool:
    """For receivers: True when `header` signs (timestamp, body) with `secret` and the timestamp is
    within `tolerance` seconds of `now` (either side), which bounds how long a captured request replays."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now.timestamp() - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body).encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "surrogatepass"))


class SignedWebhookChannel:
    """POSTs the notification as JSON, signed with the target's secret or the global one."""

    name = "webhook"

    def __init__(
        self,
        client: HttpPoster,
        templates: Templates,
        secret: bytes | None,
        secrets: Mapping[str, bytes] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._templates = templates
        self._secret = secret
        self._secrets = dict(secrets or {})
        self._clock = clock

    def secret_for(self, address: str) -> bytes | None:
        """The secret of this target URL, else the global one (None: deliveries go unsigned)."""
        return self._secrets.get(address, self._secret)

    async def send(self, address: str, note: Notification) -> DeliveryOutcome:
        """POST once; the timestamp is the sending instant, so a retry is signed afresh."""
        body = dumps(self._templates.webhook(note))
        timestamp = int(self._clock().timestamp())
        headers = {"Idempotency-Key": note.idempotency_key, TIMESTAMP_HEADER: str(timestamp)}
        secret = self.secret_for(address)
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        return await self._client.post_json(address, body, headers)
