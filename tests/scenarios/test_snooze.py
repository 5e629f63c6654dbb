"""Snoozing an acknowledged incident silences it; it re-triggers when the snooze ends."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_snoozed_incident_retriggers_at_the_end_of_the_snooze(sim: Simulator) -> None:
    key = trigger(sim, "checkout-api", "snooze")
    sim.send(ev.ACKNOWLEDGE, ev.Acknowledge(service="checkout-api", dedup_key="snooze"))
    sim.send(ev.SNOOZE, ev.Snooze(service="checkout-api", dedup_key="snooze", duration_seconds=3600, actor="amy"))
    sim.advance_by(timedelta(minutes=59))
    assert reached(sim, key) == [("frontline", timedelta(0))]
    sim.advance_by(timedelta(minutes=1))
    assert [r.payload["reason"] for r in of(sim, ev.INCIDENT_REOPENED, key)] == ["snooze_ended"]
    assert reached(sim, key)[-1] == ("frontline", timedelta(hours=1))
    sim.advance_by(timedelta(seconds=10))
    assert reached(sim, key)[-1] == ("infrastructure", timedelta(hours=1, seconds=10))


def test_a_triggered_incident_cannot_be_snoozed(sim: Simulator) -> None:
    key = trigger(sim, "checkout-api", "no-snooze")
    sim.send(ev.SNOOZE, ev.Snooze(service="checkout-api", dedup_key="no-snooze", duration_seconds=3600))
    assert of(sim, ev.INCIDENT_SNOOZED, key) == []
    sim.advance_by(timedelta(seconds=10))
    assert reached(sim, key)[-1] == ("infrastructure", timedelta(seconds=10))
