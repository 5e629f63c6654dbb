"""The state the escalator keeps per incident key."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.escalator.core.policy import Policy
from shared.events import Severity


class Status(StrEnum):
    """Lifecycle of an incident."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Timer(BaseModel):
    """The one pending deadline of an incident; a firing with another token is stale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    due_at: AwareDatetime
    token: int = Field(ge=0)


class IncidentState(BaseModel):
    """Everything `decide` needs to know about one incident key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: uuid.UUID
    incident_key: str
    service: str
    dedup_key: str
    summary: str
    severity: Severity
    status: Status
    opened_at: AwareDatetime
    policy: Policy | None = Field(description="Snapshot frozen when the incident opened.")
    policy_hash: str | None
    trigger_count: int = Field(1, ge=1)
    level: int = Field(0, ge=0, description="Last level reached; 0 before the first.")
    cycle: int = Field(0, ge=0)
    timer: Timer | None = None
    last_token: int = Field(0, ge=0, description="Highest timer token issued so far.")

    @property
    def is_open(self) -> bool:
        """True until resolved."""
        return self.status is not Status.RESOLVED
