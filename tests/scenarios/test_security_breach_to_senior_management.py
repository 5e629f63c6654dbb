"""Mission: a security breach alert goes to senior management at once."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_breach_reaches_senior_management_at_the_opening_instant(sim: Simulator) -> None:
    key = trigger(
        sim,
        "security-monitoring",
        "exfiltration",
        severity="critical",
        custom_details={"category": "breach", "host": "db1"},
    )
    assert reached(sim, key) == [("senior-management", timedelta(0))]
    step = sim.steps(key)[0]
    assert step.payload["kind"] == "hierarchical"
    assert step.payload["reason"] == "rule"
    assert step.payload["priority"] == "P1"
    opened = of(sim, ev.INCIDENT_OPENED, key)[0]
    assert opened.payload["rule"] == "breach goes straight to senior management"


def test_other_security_alerts_start_at_the_security_on_call(sim: Simulator) -> None:
    key = trigger(sim, "security-monitoring", "port-scan", severity="warning", custom_details={"category": "scan"})
    sim.advance_by(timedelta(minutes=25))
    assert reached(sim, key) == [
        ("security-on-call", timedelta(0)),
        ("ciso", timedelta(minutes=10)),
        ("senior-management", timedelta(minutes=25)),
    ]
    # The service's default priority (P1) applies when no rule sets one.
    assert {s.payload["priority"] for s in sim.steps(key)} == {"P1"}
