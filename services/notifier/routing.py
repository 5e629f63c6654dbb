"""Who a step pages and how: a pure plan from the step's targets, the directory and the instant.

Endpoint targets (webhook, Slack, Teams) are sent to as they are. Directory targets (user, team,
schedule, email) are resolved to the people on call at the step's instant, then to each person's
contact methods by their notification rules for the incident's urgency (a rule may wait before it
fires). A target that reaches nobody is reported with the reason; a step whose every target
reaches nobody makes the notifier escalate to the next level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notifier.directory.model import Directory, urgency_of
from services.notifier.directory.oncall import resolve_target, user_for
from shared import events as ev
from shared.ids import derived_id

# Channel of each endpoint target type (the url is the address).
ENDPOINT_CHANNELS = {"webhook": "webhook", "slack": "slack", "msteams": "teams"}


@dataclass(frozen=True)
class Send:
    """One delivery to make: a channel, an address on it, for whom, how long after the step."""

    target: ev.Target
    channel: str
    address: str
    recipient: str
    delay: timedelta = timedelta(0)

    def idempotency_key(self, step_id: object) -> str:
        """The one key of this (step, recipient, channel, address): a redelivered step never pages twice."""
        if self.target.type in ENDPOINT_CHANNELS:  # as before directories: (step, target, channel)
            t = self.target
            return str(derived_id("notification", step_id, t.type, t.id, t.url, self.channel))
        return str(derived_id("notification", step_id, self.recipient, self.channel, self.address))


@dataclass(frozen=True)
class Unreached:
    """A target that reaches nobody at the step's instant, and why."""

    target: ev.Target
    reason: str


@dataclass(frozen=True)
class Plan:
    """Every delivery of one step, and the targets that reach nobody."""

    sends: tuple[Send, ...]
    unreached: tuple[Unreached, ...]

    @property
    def nobody(self) -> bool:
        """True when the step pages no one at all: the notifier escalates to the next level."""
        return not self.sends and bool(self.unreached)


def plan_step(directory: Directory | None, step: ev.EscalationStepReached, at: datetime) -> Plan:
    """The deliveries of `step` at instant `at` (the step's due instant, so a late delivery still pages
    whoever was on call when the level was reached)."""
    sends: list[Send] = []
    unreached: list[Unreached] = []
    urgency = urgency_of(step.severity)
    for target in step.targets:
        channel = ENDPOINT_CHANNELS.get(target.type)
        if channel is not None:
            assert target.url is not None  # Target's validator: endpoint targets have a url
            sends.append(Send(target, channel, target.url, target.label))
            continue
        if directory is None or target.id is None:
            unreached.append(Unreached(target, f"no directory configured for {target.type} target {target.label!r}"))
            continue
        resolution = resolve_target(directory, target.type, target.id, at)
        if not resolution.users:
            unreached.append(Unreached(target, resolution.reason or f"{target.label!r} reaches nobody"))
            continue
        before = len(sends)
        for user_id in resolution.users:
            user = user_for(directory, user_id)
            if user is None:
                continue
            seen: set[tuple[str, str]] = set()
            for rule in sorted((r for r in user.rules() if r.urgency == urgency), key=lambda r: r.delay):
                for method in user.methods_for(rule.contact):
                    if (method.type, method.address) not in seen:
                        seen.add((method.type, method.address))
                        sends.append(Send(target, method.type, method.address, user.id, rule.delay))
        if len(sends) == before:
            reason = f"nobody reached by {target.label!r} has a contact method for {urgency} urgency"
            unreached.append(Unreached(target, reason))
    return Plan(tuple(sends), tuple(unreached))
