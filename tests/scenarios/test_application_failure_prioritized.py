"""Mission: a high-severity application failure affecting many users is prioritized and escalated."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_many_users_affected_raises_priority_and_quickens_escalation(sim: Simulator) -> None:
    key = trigger(sim, "customer-portal", "login-500", severity="critical", custom_details={"users_affected": 25_000})
    sim.advance_by(timedelta(minutes=13))
    assert reached(sim, key) == [
        ("app-support", timedelta(0)),
        ("application-engineering", timedelta(minutes=5)),  # 20m x 0.25
        ("engineering-manager", timedelta(minutes=12, seconds=30)),  # + 30m x 0.25
    ]
    assert of(sim, ev.INCIDENT_OPENED, key)[0].payload["priority"] == "P1"


def test_few_users_affected_escalates_at_the_normal_pace(sim: Simulator) -> None:
    key = trigger(sim, "customer-portal", "avatar-404", severity="error", custom_details={"users_affected": 12})
    sim.advance_by(timedelta(minutes=13))
    assert reached(sim, key) == [("app-support", timedelta(0))]
    sim.advance_by(timedelta(minutes=7))
    assert reached(sim, key)[-1] == ("application-engineering", timedelta(minutes=20))
    assert of(sim, ev.INCIDENT_OPENED, key)[0].payload["priority"] == "P2"


def test_prioritized_incident_warns_on_its_p1_sla(sim: Simulator) -> None:
    key = trigger(sim, "customer-portal", "checkout-down", severity="critical", custom_details={"users_affected": 5000})
    sim.advance_by(timedelta(minutes=10))
    breaches = of(sim, ev.SLA_BREACHED, key)
    assert [(b.payload["clock"], b.payload["target_seconds"]) for b in breaches] == [("acknowledge", 600.0)]
