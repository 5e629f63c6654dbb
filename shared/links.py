"""Signed links that let a notified person acknowledge or resolve an incident with one click.

The notifier signs them, the intake checks them: `{base}/v1/incidents/{id}/{action}?expires=&by=&sig=`.
The signature covers the action, the incident, the expiry and the person the link was sent to, so a
link cannot be stretched in time, turned into another action or reused for another incident, and the
intake records who acted.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

Action = Literal["acknowledge", "resolve"]
ACTIONS: frozenset[str] = frozenset({"acknowledge", "resolve"})


class LinkSigner:
    """Signs and checks acknowledge/resolve links to the intake's operator API."""

    def __init__(self, secret: bytes, base_url: str = "", ttl: timedelta = timedelta(hours=24)) -> None:
        if not secret:
            raise ValueError("the link secret must not be empty")
        if ttl <= timedelta(0):
            raise ValueError("the link ttl must be positive")
        self._secret = secret
        self._base_url = base_url.rstrip("/")
        self._ttl = ttl

    def signature(self, action: str, incident_id: uuid.UUID | str, expires: int, by: str) -> str:
        """Return the hex HMAC-SHA256 over `action|incident_id|expires|by`."""
        message = f"{action}|{incident_id}|{expires}|{by}".encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def link(self, action: Action, incident_id: uuid.UUID | str, issued_at: datetime, by: str) -> str:
        """Return the signed URL of `action` for `by`, valid until `issued_at + ttl` (whole seconds, rounded up)."""
        expires = math.ceil((issued_at + self._ttl).timestamp())
        query = urlencode({"expires": expires, "by": by, "sig": self.signature(action, incident_id, expires, by)})
        return f"{self._base_url}/v1/incidents/{incident_id}/{action}?{query}"

    def verify(self, action: str, incident_id: uuid.UUID | str, expires: int, by: str, sig: str, now: datetime) -> bool:
        """True when `sig` signs (action, incident, expires, by) and `now` is not past `expires`."""
        if action not in ACTIONS or now.timestamp() > expires:
            return False
        expected = self.signature(action, incident_id, expires, by).encode()
        # A forged sig may be any text; bytes let compare_digest take it without a TypeError.
        return hmac.compare_digest(expected, sig.lower().encode("utf-8", "surrogatepass"))
