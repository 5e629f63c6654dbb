"""Escalation policies and the service catalog, as validated from YAML."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.escalator.core.durations import Duration
from shared.events import Target


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Level(_Frozen):
    """One rung of the ladder: who is notified, and how long after the previous rung."""

    name: str | None = Field(None, examples=["infrastructure"])
    delay: Duration = Field(
        timedelta(0),
        description="Time after the previous level (or the incident's opening, for the first) "
        "before this level is reached, unless acknowledged or resolved.",
    )
    targets: tuple[Target, ...] = Field(min_length=1)


class Policy(_Frozen):
    """An ordered list of levels, frozen into every incident it opens."""

    id: str = Field(min_length=1)
    name: str | None = None
    levels: tuple[Level, ...] = Field(min_length=1)

    def snapshot_hash(self) -> str:
        """Return the SHA-256 of the canonical JSON of this policy."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Service(_Frozen):
    """A monitored service and the policy its incidents follow."""

    id: str = Field(min_length=1)
    name: str | None = None
    escalation_policy: str = Field(min_length=1)


class Catalog(_Frozen):
    """Every service and policy of a configuration folder."""

    services: dict[str, Service] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)
    default_policy: str | None = Field(None, description="Policy of services not listed.")

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        for service in self.services.values():
            if service.escalation_policy not in self.policies:
                raise ValueError(
                    f"service {service.id!r} names unknown escalation_policy {service.escalation_policy!r}"
                )
        if self.default_policy is not None and self.default_policy not in self.policies:
            raise ValueError(f"default_policy names unknown policy {self.default_policy!r}")
        return self

    def policy_for(self, service: str) -> Policy | None:
        """Return the policy of a service, the default policy, or None."""
        entry = self.services.get(service)
        policy_id = entry.escalation_policy if entry is not None else self.default_policy
        return self.policies.get(policy_id) if policy_id is not None else None
