"""Mission: a network failure that hits business operations triggers the escalation procedure."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_business_impact_starts_the_procedure_at_p1_and_double_speed(sim: Simulator) -> None:
    key = trigger(sim, "core-network", "bgp-down", severity="error", custom_details={"business_impact": True})
    sim.advance_by(timedelta(minutes=15))
    assert [(n, at) for n, at in reached(sim, key)] == [
        ("noc", timedelta(0)),
        ("network-engineering", timedelta(minutes=5)),
        ("it-operations-manager", timedelta(minutes=15)),
    ]
    assert of(sim, ev.INCIDENT_OPENED, key)[0].payload["priority"] == "P1"


def test_round_robin_pages_one_noc_engineer_per_cycle_and_alternates(sim: Simulator) -> None:
    key = trigger(sim, "core-network", "flap", severity="error", custom_details={"business_impact": True})
    sim.advance_by(timedelta(hours=2))
    noc = [s for s in sim.steps(key) if s.payload["level_name"] == "noc"]
    assert len(noc) >= 3  # repeat: forever
    names = [s.payload["targets"][0]["name"] for s in noc]
    assert all(len(s.payload["targets"]) == 1 for s in noc)
    assert names[0] != names[1]
    assert names[0] == names[2]
    assert set(names) == {"noc-a", "noc-b"}
