"""Mission: an unresolved customer complaint goes to the service manager, counted in business hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, trigger


def test_complaint_reaches_service_manager_after_four_business_hours(sim: Simulator) -> None:
    # Wednesday 10:00 Berlin + 4 business hours = Wednesday 14:00 Berlin (13:00 UTC).
    key = trigger(sim, "customer-support", "ticket-4711", severity="warning")
    sim.advance_by(timedelta(hours=5))
    steps = sim.steps(key)
    assert [(s.payload["level_name"], s.at) for s in steps] == [
        ("support-desk", datetime(2026, 11, 25, 9, 0, tzinfo=UTC)),
        ("service-manager", datetime(2026, 11, 25, 13, 0, tzinfo=UTC)),
    ]
    assert steps[-1].payload["kind"] == "hierarchical"


def test_acknowledged_but_unresolved_complaint_reopens_after_ack_timeout(sim: Simulator) -> None:
    key = trigger(sim, "customer-support", "ticket-4712")
    sim.advance_by(timedelta(minutes=30))
    sim.send(ev.ACKNOWLEDGE, ev.Acknowledge(service="customer-support", dedup_key="ticket-4712", actor="desk-ann"))
    sim.advance_by(timedelta(hours=2))  # ack_timeout: 2h
    reopened = of(sim, ev.INCIDENT_REOPENED, key)
    assert [(r.payload["reason"], r.at) for r in reopened] == [
        ("ack_timeout", datetime(2026, 11, 25, 11, 30, tzinfo=UTC))
    ]
    assert sim.steps(key)[-1].payload["level_name"] == "support-desk"
    assert sim.steps(key)[-1].payload["cycle"] == 1
