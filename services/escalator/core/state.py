"""The state the escalator keeps per incident key."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.escalator.core.durations import Duration
from services.escalator.core.policy import Priority, Snapshot
from shared.events import Severity


class Status(StrEnum):
    """Lifecycle of an incident."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


DeadlineKind = Literal["escalate", "ack_timeout", "snooze_end", "sla"]

# Order of deadlines due at the same instant: SLA news first, then state changes, escalation last.
KIND_ORDER: dict[str, int] = {"sla": 0, "snooze_end": 1, "ack_timeout": 2, "escalate": 3}


class Deadline(_Frozen):
    """One pending instant at which the incident must be looked at again."""

    kind: DeadlineKind
    due_at: AwareDatetime
    level: int | None = Field(None, description="For `escalate`: the level to reach.")
    clock: Literal["acknowledge", "resolve"] | None = Field(None, description="For `sla`: which clock.")
    fraction: float | None = Field(None, description="For `sla`: the fraction of the target (1.0 = breach).")
    reason: Literal["timeout", "opened", "repeat", "reassigned"] | None = Field(
        None, description="For `escalate`: why the level is reached."
    )

    def sort_key(self) -> tuple[datetime, int, str, float]:
        """Deterministic processing order."""
        return (self.due_at, KIND_ORDER[self.kind], self.clock or "", self.fraction or 0.0)


class Timer(_Frozen):
    """The incident's next wake-up: the earliest deadline and its token (a firing with another is stale)."""

    due_at: AwareDatetime
    token: int = Field(ge=0)


class SlaClock(_Frozen):
    """Time to acknowledge or to resolve, counted while running, paused on request."""

    clock: Literal["acknowledge", "resolve"]
    target: Duration
    consumed: Duration = Field(timedelta(0), description="Counted time before the current running stretch.")
    running_since: AwareDatetime | None = None
    announced: tuple[float, ...] = Field((), description="Fractions already warned (1.0 = breached).")
    stopped: bool = False


class IncidentState(_Frozen):
    """Everything `decide` needs to know about one incident key."""

    incident_id: uuid.UUID
    incident_key: str
    service: str
    dedup_key: str
    summary: str
    severity: Severity
    priority: Priority
    status: Status
    opened_at: AwareDatetime
    snapshot: Snapshot | None = Field(description="Frozen when the incident opened (or was reassigned).")
    snapshot_hash: str | None
    rule: str | None = None
    delay_factor: float = 1.0
    trigger_count: int = Field(1, ge=1)
    level: int = Field(0, ge=0, description="Last level reached; 0 before the first.")
    cycle: int = Field(0, ge=0)
    deadlines: tuple[Deadline, ...] = ()
    timer: Timer | None = None
    last_token: int = Field(0, ge=0, description="Highest timer token issued so far.")
    snoozed_until: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    flaps: int = Field(0, ge=0, description="Times a trigger reopened the incident within the flap window.")
    sla: tuple[SlaClock, ...] = ()
    sla_paused: bool = False
    notes: int = 0

    @property
    def is_open(self) -> bool:
        """True until resolved."""
        return self.status is not Status.RESOLVED
