"""Escalation policies, services and the catalog, as validated from YAML; snapshots frozen per incident."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from services.escalator.core.calendar import BusinessCalendar
from services.escalator.core.durations import Duration
from shared.events import Severity, Target
from shared.ids import check_service_id


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Priority(StrEnum):
    """Incident priority, P1 most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


SEVERITY_PRIORITY = {
    Severity.CRITICAL: Priority.P1,
    Severity.ERROR: Priority.P2,
    Severity.WARNING: Priority.P3,
    Severity.INFO: Priority.P4,
}


class LevelKind(StrEnum):
    """Functional: to a more skilled team. Hierarchical: up the management chain."""

    FUNCTIONAL = "functional"
    HIERARCHICAL = "hierarchical"


class Level(_Frozen):
    """One rung of the ladder: who is notified, and how long after the previous rung."""

    name: str | None = Field(None, examples=["infrastructure"])
    kind: LevelKind = LevelKind.FUNCTIONAL
    delay: Duration = Field(
        timedelta(0),
        description="Time after the previous level (or the opening, for the first) before this level "
        "is reached, unless acknowledged or resolved.",
    )
    business_time: bool = Field(False, description="Count `delay` in the service's business hours.")
    round_robin: bool = Field(False, description="Notify one target per visit, rotating, not all of them.")
    targets: tuple[Target, ...] = Field(min_length=1)


class FieldCondition(_Frozen):
    """A test on one field of the trigger; every given operator must hold."""

    equals: Any = None
    one_of: tuple[Any, ...] | None = Field(None, alias="in")
    gte: float | None = None
    lte: float | None = None
    regex: str | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def holds(self, value: Any) -> bool:
        """True when `value` passes every operator set on this condition."""
        if value is None:
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.one_of is not None and value not in self.one_of:
            return False
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if self.gte is not None and (number is None or number < self.gte):
            return False
        if self.lte is not None and (number is None or number > self.lte):
            return False
        return self.regex is None or re.search(self.regex, str(value)) is not None


class Match(_Frozen):
    """When a rule applies: severities, priorities and field conditions, all of them."""

    severity: tuple[Severity, ...] | None = None
    priority: tuple[Priority, ...] | None = None
    fields: dict[str, FieldCondition | str | int | float | bool] = Field(
        default_factory=dict,
        description="Dotted path in the trigger (e.g. custom_details.category) to a value "
        "or a condition {equals, in, gte, lte, regex}.",
    )


class Rule(_Frozen):
    """Changes how an incident escalates when its trigger matches; the first matching rule wins."""

    name: str = Field(min_length=1)
    match: Match
    start_level: int | None = Field(None, ge=1, description="Reach this level at once (e.g. senior management).")
    priority: Priority | None = None
    delay_factor: float | None = Field(None, gt=0, description="Multiply every level delay (0.5 halves them).")


class SlaTarget(_Frozen):
    """Time to acknowledge and to resolve for one priority, with warnings before breach."""

    acknowledge: Duration | None = None
    resolve: Duration | None = None
    warn_at: tuple[float, ...] = Field((0.5, 0.75), description="Fractions of the target that warn.")
    business_time: bool = False

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("warning fractions lie strictly between 0 and 1")
        return tuple(sorted(set(value)))


class Policy(_Frozen):
    """An ordered list of levels with repeat, rules, ack timeout and SLA targets."""

    id: str = Field(min_length=1)
    name: str | None = None
    levels: tuple[Level, ...] = Field(min_length=1)
    repeat: int | Literal["forever"] = Field(0, description="Loops after the last level: a count or 'forever'.")
    repeat_delay: Duration | None = Field(
        None, description="Time after the last level before level 1 again (default: level 1's delay)."
    )
    ack_timeout: Duration | None = Field(
        None, description="An acknowledged incident unresolved this long is re-escalated."
    )
    flap_window: Duration | None = Field(
        timedelta(minutes=5),
        description="A trigger this soon after the incident resolved reopens it (counted, no new page); null: never.",
    )
    rules: tuple[Rule, ...] = ()
    sla: dict[Priority, SlaTarget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> Policy:
        if self.repeat != 0 and self.repeat_delay is None and self.levels[0].delay == timedelta(0):
            raise ValueError("repeat needs repeat_delay when the first level has no delay")
        if isinstance(self.repeat, int) and self.repeat < 0:
            raise ValueError("repeat must be >= 0 or 'forever'")
        for rule in self.rules:
            if rule.start_level is not None and rule.start_level > len(self.levels):
                raise ValueError(f"rule {rule.name!r}: start_level {rule.start_level} > {len(self.levels)} levels")
        return self

    @property
    def loop_delay(self) -> timedelta:
        """Time from the last level back to level 1 when repeating."""
        return self.repeat_delay if self.repeat_delay is not None else self.levels[0].delay

    def may_loop(self, cycle: int) -> bool:
        """True when another cycle may start after cycle `cycle` (0-based) ended."""
        return self.repeat == "forever" or cycle < self.repeat


class MaintenanceWindow(_Frozen):
    """A period in which incidents open but escalation is held."""

    start: AwareDatetime
    end: AwareDatetime
    reason: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("a maintenance window ends after it starts")
        return self


class Service(_Frozen):
    """A monitored service: its policy, default priority, calendar and maintenance windows."""

    id: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        return check_service_id(value)

    name: str | None = None
    escalation_policy: str = Field(min_length=1)
    default_priority: Priority | None = None
    calendar: str | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()


class Snapshot(_Frozen):
    """What an incident escalates by, frozen when it opens: policy, calendar, service settings."""

    policy: Policy
    calendar: BusinessCalendar | None = None
    default_priority: Priority | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()

    _digest: str | None = PrivateAttr(default=None)

    def digest(self) -> str:
        """Return the SHA-256 of the canonical JSON of this snapshot (its version hash)."""
        if self._digest is None:  # frozen, so computed once
            canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
            self._digest = hashlib.sha256(canonical.encode()).hexdigest()
        return self._digest


class Catalog(_Frozen):
    """Every service, policy and calendar of a configuration folder."""

    services: dict[str, Service] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = Field(default_factory=dict)
    default_policy: str | None = Field(None, description="Policy of services not listed.")

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        for service in self.services.values():
            if service.escalation_policy not in self.policies:
                raise ValueError(
                    f"service {service.id!r} names unknown escalation_policy {service.escalation_policy!r}"
                )
            if service.calendar is not None and service.calendar not in self.calendars:
                raise ValueError(f"service {service.id!r} names unknown calendar {service.calendar!r}")
        if self.default_policy is not None and self.default_policy not in self.policies:
            raise ValueError(f"default_policy names unknown policy {self.default_policy!r}")
        return self

    def policy_for(self, service: str) -> Policy | None:
        """Return the policy of a service, the default policy, or None."""
        entry = self.services.get(service)
        policy_id = entry.escalation_policy if entry is not None else self.default_policy
        return self.policies.get(policy_id) if policy_id is not None else None

    def snapshot_for_command(self, service: str, type_: str, payload: dict[str, Any], is_open: bool) -> Snapshot | None:
        """Return the snapshot a command needs: a new incident's, or a reassignment's destination."""
        if type_ == "incident.trigger" and not is_open:
            return self.snapshot_for(service)
        if type_ == "incident.reassign" and is_open:
            if payload.get("team"):
                return self.snapshot_for_team(service, str(payload["team"]))
            return self.snapshot_for(service, policy_id=str(payload.get("policy")))
        return None

    def snapshot_for_team(self, service: str, team: str) -> Snapshot | None:
        """Return a one-level snapshot that pages one team (a reassignment to a team)."""
        level = Level(name=team, targets=(Target(type="team", id=team, name=team),))
        base = self.snapshot_for(service)
        policy = Policy(id=f"team:{team}", name=f"Reassigned to {team}", levels=(level,))
        if base is None:
            return Snapshot(policy=policy)
        return base.model_copy(update={"policy": policy})

    _snapshots: dict[tuple[str, str | None], Snapshot | None] = PrivateAttr(default_factory=dict)

    def snapshot_for(self, service: str, policy_id: str | None = None) -> Snapshot | None:
        """Return the snapshot a new incident of `service` (optionally under another policy) opens with."""
        key = (service, policy_id)
        if key not in self._snapshots:  # the catalog is frozen: one snapshot object per service and policy
            self._snapshots[key] = self._build_snapshot(service, policy_id)
        return self._snapshots[key]

    def _build_snapshot(self, service: str, policy_id: str | None) -> Snapshot | None:
        policy = self.policies.get(policy_id) if policy_id is not None else self.policy_for(service)
        if policy is None:
            return None
        entry = self.services.get(service)
        calendar = self.calendars.get(entry.calendar) if entry is not None and entry.calendar else None
        return Snapshot(
            policy=policy,
            calendar=calendar,
            default_priority=entry.default_priority if entry is not None else None,
            maintenance=entry.maintenance if entry is not None else (),
        )
