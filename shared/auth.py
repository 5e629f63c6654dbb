"""Bearer tokens with roles, configured as SHA-256 hashes in the `access` section of the config folder.

```yaml
access:
  jane-auditor:            # the token's name: shown in logs and recorded as the actor
    role: auditor          # responder | auditor | admin | integration
    token_sha256: 9f86...  # sha256 of the token; `escalation access token` makes both
  prometheus-prod:         # an integration key: what a monitoring system sends (PagerDuty's
    role: integration      # routing_key, a bearer token from Alertmanager or Grafana)
    service: checkout-api  # the service its events are about
    token_sha256: 60c1...
```
Only hashes are stored, so the config folder leaks no usable token; rotating a token is adding a new
entry, handing it out, then removing the old one. Services re-read the section when the folder's
YAML files change (`AccessList.watch`), so a rotation needs no restart; a change that does not load,
or that would remove every token and so open the APIs, is refused and logged, the old list kept.
A folder without any `access` entry at start leaves the APIs open (development), and every service
says so in its log at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.ids import check_service_id
from shared.logging import get_logger
from shared.yamlconfig import ConfigError, folder_stamp, section_entries

log = get_logger("auth")


class Role(StrEnum):
    """What a token may do; admin may do everything."""

    RESPONDER = "responder"
    AUDITOR = "auditor"
    ADMIN = "admin"
    INTEGRATION = "integration"


class TokenEntry(BaseModel):
    """One configured token."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the token.")
    service: str | None = Field(None, min_length=1, description="The service an integration key reports for.")

    @field_validator("service")
    @classmethod
    def _service_id(cls, value: str | None) -> str | None:
        return None if value is None else check_service_id(value)

    @model_validator(mode="after")
    def _integration_has_service(self) -> TokenEntry:
        if (self.role is Role.INTEGRATION) != (self.service is not None):
            raise ValueError("an integration key needs a service, and only an integration key has one")
        return self


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    name: str
    role: Role | None  # None: authentication is off
    service: str | None = None  # an integration key's service


ANONYMOUS = Principal("anonymous", None)


def token_hash(token: str) -> str:
    """The hash a token is configured by."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return "esc_" + secrets.token_urlsafe(32)


class AccessList:
    """The configured tokens, looked up by their hash; re-read from `folder` when it changes."""

    def __init__(self, entries: dict[str, TokenEntry], folder: Path | None = None) -> None:
        self._by_hash = {e.token_sha256: Principal(name, e.role, e.service) for name, e in entries.items()}
        self._folder = folder
        self._stamp = folder_stamp(folder)

    def refresh(self) -> bool:
        """Re-read the folder if its YAML files changed; True when the tokens were replaced."""
        stamp = folder_stamp(self._folder)
        if self._folder is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            fresh = load_access(self._folder)
        except (ConfigError, OSError) as exc:
            log.error("access list not reloaded: the config does not load; the previous tokens stay", error=str(exc))
            return False
        if self.enabled and not fresh.enabled:
            log.error("access list not reloaded: it would remove every token and open the APIs")
            return False
        self._by_hash = fresh._by_hash
        log.info("access list reloaded", tokens=len(self._by_hash))
        return True

    async def watch(self, every: float = 5.0) -> None:
        """Refresh every `every` seconds until cancelled (a token rotation needs no restart)."""
        while True:
            await asyncio.sleep(every)
            self.refresh()

    @property
    def enabled(self) -> bool:
        """False when no token is configured: every request passes as anonymous."""
        return bool(self._by_hash)

    def authenticate(self, authorization: str | None, allowed: frozenset[Role]) -> Principal:
        """The caller of a request, or an HTTPException (401 no or unknown token, 403 wrong role)."""
        if not self.enabled:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "Authentication required: send 'Authorization: Bearer <token>'", _CHALLENGE)
        return self.check(self.lookup(token.strip()), allowed)

    def lookup(self, token: str) -> Principal:
        """The holder of a token (e.g. a PagerDuty routing_key), or 401."""
        principal = self._by_hash.get(token_hash(token))
        if principal is None:
            raise HTTPException(401, "Unknown or revoked token", _CHALLENGE)
        return principal

    def check(self, principal: Principal, allowed: frozenset[Role]) -> Principal:
        """The principal when its role is allowed (admin always is), else 403."""
        if principal.role is None:
            return principal
        if principal.role is not Role.ADMIN and principal.role not in allowed:
            wanted = " or ".join(sorted(r.value for r in allowed | {Role.ADMIN}))
            raise HTTPException(403, f"Token {principal.name!r} has role {principal.role}; this needs {wanted}")
        return principal

    def dependency(self, *roles: Role) -> Callable[[str | None], Awaitable[Principal]]:
        """A FastAPI dependency admitting the given roles (and admin)."""
        allowed = frozenset(roles)

        async def require(authorization: Annotated[str | None, Header()] = None) -> Principal:
            return self.authenticate(authorization, allowed)

        return require


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def load_access(folder: Path) -> AccessList:
    """Read the `access` entries of every YAML file of the config folder (a missing folder: none)."""
    entries: dict[str, TokenEntry] = {}
    for doc, name, body in section_entries(folder, "access"):
        try:
            entries[name] = TokenEntry.model_validate(body)
        except ValidationError as exc:
            raise doc.error(exc, ("access", name)) from exc
    return AccessList(entries, folder)
