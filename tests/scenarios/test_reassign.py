"""Reassigning hands an open incident to another policy or team; escalation restarts there."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_reassign_to_a_policy_freezes_the_new_snapshot_and_restarts(sim: Simulator) -> None:
    key = trigger(sim, "checkout-api", "reassign")
    before = sim.states[key].snapshot_hash
    sim.advance_by(timedelta(seconds=5))
    sim.send(
        ev.REASSIGN,
        ev.Reassign(service="checkout-api", dedup_key="reassign", policy="application-failure", actor="lead"),
    )
    reassigned = of(sim, ev.INCIDENT_REASSIGNED, key)
    assert [(r.payload["policy_id"], r.payload["actor"]) for r in reassigned] == [("application-failure", "lead")]
    assert sim.states[key].snapshot_hash != before
    assert reached(sim, key)[-1] == ("app-support", timedelta(seconds=5))
    sim.advance_by(timedelta(minutes=20))
    assert reached(sim, key)[-1] == ("application-engineering", timedelta(minutes=20, seconds=5))
    # The old policy's infrastructure level (due at 10 s) never came.
    assert "infrastructure" not in [n for n, _ in reached(sim, key)]


def test_reassign_to_a_team_pages_that_team(sim: Simulator) -> None:
    key = trigger(sim, "checkout-api", "to-team")
    sim.send(ev.REASSIGN, ev.Reassign(service="checkout-api", dedup_key="to-team", team="database-admins"))
    step = sim.steps(key)[-1]
    assert step.payload["targets"] == [
        {"type": "team", "id": "database-admins", "url": None, "name": "database-admins"}
    ]
    assert step.payload["policy_id"] == "team:database-admins"


def test_reassign_to_an_unknown_policy_changes_nothing(sim: Simulator) -> None:
    key = trigger(sim, "checkout-api", "unknown")
    sim.send(ev.REASSIGN, ev.Reassign(service="checkout-api", dedup_key="unknown", policy="nope"))
    assert of(sim, ev.INCIDENT_REASSIGNED, key) == []
