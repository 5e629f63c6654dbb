"""An acknowledged incident that stays unresolved past the ack timeout re-escalates."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def _ack(sim: Simulator, dedup: str) -> None:
    sim.send(ev.ACKNOWLEDGE, ev.Acknowledge(service="web-servers", dedup_key=dedup, actor="ops-joe"))


def test_ack_timeout_reopens_and_renotifies_the_current_level(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "slow-disk")
    sim.advance_by(timedelta(minutes=20))  # infrastructure reached at 15m
    _ack(sim, "slow-disk")
    sim.advance_by(timedelta(minutes=29, seconds=59))
    assert of(sim, ev.INCIDENT_REOPENED, key) == []
    sim.advance_by(timedelta(seconds=1))  # ack_timeout 30m
    assert [r.payload["reason"] for r in of(sim, ev.INCIDENT_REOPENED, key)] == ["ack_timeout"]
    assert reached(sim, key)[-1] == ("infrastructure", timedelta(minutes=50))
    assert sim.steps(key)[-1].payload["reason"] == "reopened"
    # Escalation continues from there: head of operations 30 minutes later.
    sim.advance_by(timedelta(minutes=30))
    assert reached(sim, key)[-1] == ("head-of-operations", timedelta(minutes=80))


def test_resolve_before_the_ack_timeout_ends_everything(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "fixed")
    _ack(sim, "fixed")
    sim.advance_by(timedelta(minutes=10))
    sim.send(ev.RESOLVE, ev.Resolve(service="web-servers", dedup_key="fixed"))
    sim.run_until_quiet()
    assert of(sim, ev.INCIDENT_REOPENED, key) == []
    assert sim.states[key].deadlines == ()
