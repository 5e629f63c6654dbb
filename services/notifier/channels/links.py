"""Signed links that let a notified person acknowledge or resolve an incident with one click."""

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
    """Signs `{base_url}/v1/incidents/{id}/{action}?expires=..&sig=..` for the intake's operator API."""

    def __init__(self, secret: bytes, base_url: str, ttl: timedelta) -> None:
        if not secret:
            raise ValueError("the link secret must not be empty")
        if ttl <= timedelta(0):
            raise ValueError("the link ttl must be positive")
        self._secret = secret
        self._base_url = base_url.rstrip("/")
        self._ttl = ttl

    def signature(self, action: str, incident_id: uuid.UUID | str, expires: int) -> str:
        """Return the hex HMAC-SHA256 over `action|incident_id|expires`."""
        message = f"{action}|{incident_id}|{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def link(self, action: Action, incident_id: uuid.UUID | str, issued_at: datetime) -> str:
        """Return the signed URL of `action`, valid until `issued_at + ttl` (whole seconds, rounded up)."""
        expires = math.ceil((issued_at + self._ttl).timestamp())
        query = urlencode({"expires": expires, "sig": self.signature(action, incident_id, expires)})
        return f"{self._base_url}/v1/incidents/{incident_id}/{action}?{query}"

    def verify(self, action: str, incident_id: uuid.UUID | str, expires: int, sig: str, now: datetime) -> bool:
        """True when `sig` signs (action, incident, expires) and `now` is not past `expires`."""
        if action not in ACTIONS or now.timestamp() > expires:
            return False
        expected = self.signature(action, incident_id, expires).encode()
        # A forged sig may be any text; bytes let compare_digest take it without a TypeError.
        return hmac.compare_digest(expected, sig.lower().encode("utf-8", "surrogatepass"))
