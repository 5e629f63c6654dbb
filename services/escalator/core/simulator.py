"""A virtual-clock driver of `decide`: commands at chosen instants, timers fired exactly on time."""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from services.escalator.core.decide import NEEDS_SNAPSHOT, decide
from services.escalator.core.policy import Catalog
from services.escalator.core.state import IncidentState
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.ids import incident_key


@dataclass(frozen=True)
class Happened:
    """One event the escalator emitted, at its instant."""

    at: datetime
    incident_key: str
    incident_id: uuid.UUID
    type: str
    payload: dict[str, Any]


@dataclass
class Simulator:
    """Runs commands through `decide` against a catalog on a virtual clock; no I/O, no real time."""

    catalog: Catalog
    now: datetime
    states: dict[str, IncidentState] = field(default_factory=dict)
    timeline: list[Happened] = field(default_factory=list)
    commands: int = 0
    _timers: list[tuple[datetime, str, int]] = field(default_factory=list)

    def send(
        self, type_: str, payload: BaseModel, at: datetime | None = None, incident_id: uuid.UUID | None = None
    ) -> Envelope:
        """Advance to `at` (firing due timers on the way), then apply one command; return it."""
        if at is not None:
            self.advance_to(at)
        service, dedup = getattr(payload, "service"), getattr(payload, "dedup_key")  # noqa: B009
        env = new_envelope(
            type_, payload, incident_key=incident_key(service, dedup), occurred_at=self.now, incident_id=incident_id
        )
        self._apply(env)
        return env

    def advance_to(self, until: datetime) -> None:
        """Fire, in order and each at its own instant, every timer due up to `until`."""
        while self._timers and self._timers[0][0] <= until:
            due, key, token = heapq.heappop(self._timers)
            state = self.states.get(key)
            if state is None or state.timer is None or state.timer.token != token:
                continue
            self.now = max(self.now, due)
            env = new_envelope(
                ev.TIMER_FIRED,
                ev.TimerFired(token=token, due_at=due),
                incident_key=key,
                occurred_at=due,
                incident_id=state.incident_id,
            )
            self._apply(env)
        self.now = max(self.now, until)

    def advance_by(self, delta: timedelta) -> None:
        """Advance the clock by `delta`."""
        self.advance_to(self.now + delta)

    def run_until_quiet(self, limit: timedelta = timedelta(days=30)) -> None:
        """Fire timers until none is left (or `limit` of virtual time passed)."""
        end = self.now + limit
        while self._timers and self._timers[0][0] <= end:
            self.advance_to(self._timers[0][0])

    def _apply(self, env: Envelope) -> None:
        state = self.states.get(env.incident_key)
        snapshot = None
        service = env.payload.get("service")
        if env.type in NEEDS_SNAPSHOT and isinstance(service, str):
            snapshot = self.catalog.snapshot_for_command(
                service, env.type, env.payload, state is not None and state.is_open
            )
        decision = decide(snapshot, state, env, self.now)
        self.commands += 1
        if decision.state is None:
            return
        self.states[env.incident_key] = decision.state
        for emit in decision.emits:
            self.timeline.append(
                Happened(
                    emit.at,
                    env.incident_key,
                    decision.state.incident_id,
                    emit.type,
                    emit.payload.model_dump(mode="json"),
                )
            )
        timer = decision.state.timer
        if timer is not None:
            heapq.heappush(self._timers, (timer.due_at, env.incident_key, timer.token))

    def events(self, type_: str | None = None, key: str | None = None) -> list[Happened]:
        """The emitted events, optionally of one type and one incident key."""
        return [
            h for h in self.timeline if (type_ is None or h.type == type_) and (key is None or h.incident_key == key)
        ]

    def steps(self, key: str | None = None) -> list[Happened]:
        """The escalation steps reached."""
        return self.events(ev.ESCALATION_STEP_REACHED, key)
