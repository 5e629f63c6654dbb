"""An operator escalates at once: to the next level, or to a chosen one."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_escalate_now_reaches_the_next_level_immediately_and_rearms(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "now")
    sim.advance_by(timedelta(minutes=2))
    sim.send(ev.ESCALATE, ev.EscalateNow(service="web-servers", dedup_key="now", actor="lead"))
    assert reached(sim, key)[-1] == ("infrastructure", timedelta(minutes=2))
    assert sim.steps(key)[-1].payload["reason"] == "escalate_now"
    sim.advance_by(timedelta(minutes=30))
    assert reached(sim, key)[-1] == ("head-of-operations", timedelta(minutes=32))


def test_escalate_to_a_chosen_level_from_acknowledged(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "chosen")
    sim.send(ev.ACKNOWLEDGE, ev.Acknowledge(service="web-servers", dedup_key="chosen"))
    sim.send(ev.ESCALATE, ev.EscalateNow(service="web-servers", dedup_key="chosen", to_level=3))
    assert [n for n, _ in reached(sim, key)] == ["frontline", "head-of-operations"]
    assert [r.payload["reason"] for r in of(sim, ev.INCIDENT_REOPENED, key)] == ["escalate_now"]


def test_escalating_back_to_an_earlier_level_gets_a_new_step_id(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "again")
    sim.send(ev.ESCALATE, ev.EscalateNow(service="web-servers", dedup_key="again", to_level=1))
    steps = sim.steps(key)
    assert [(s.payload["level"], s.payload["cycle"]) for s in steps] == [(1, 0), (1, 1)]
    assert steps[0].payload["step_id"] != steps[1].payload["step_id"]


def test_escalating_past_the_last_level_is_refused(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "past")
    sim.send(ev.ESCALATE, ev.EscalateNow(service="web-servers", dedup_key="past", to_level=9))
    assert len(sim.steps(key)) == 1
