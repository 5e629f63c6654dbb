"""Mission: a server outage that frontline support cannot resolve goes to the infrastructure team."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, reached, trigger


def test_unacknowledged_outage_climbs_frontline_infrastructure_head_of_operations(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "web-03-down", severity="critical")
    sim.advance_by(timedelta(minutes=14, seconds=59))
    assert reached(sim, key) == [("frontline", timedelta(0))]
    sim.advance_by(timedelta(seconds=1))
    assert reached(sim, key)[-1] == ("infrastructure", timedelta(minutes=15))
    sim.advance_by(timedelta(minutes=30))
    assert reached(sim, key)[-1] == ("head-of-operations", timedelta(minutes=45))
    steps = sim.steps(key)
    assert [s.payload["kind"] for s in steps] == ["functional", "functional", "hierarchical"]
    assert steps[1].payload["targets"] == [
        {"type": "webhook", "id": None, "url": "http://127.0.0.1:9999/infrastructure", "name": "infrastructure"}
    ]


def test_repeat_loops_once_then_stops(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "loop")
    sim.run_until_quiet()
    assert [(name, at) for name, at in reached(sim, key)] == [
        ("frontline", timedelta(0)),
        ("infrastructure", timedelta(minutes=15)),
        ("head-of-operations", timedelta(minutes=45)),
        ("frontline", timedelta(minutes=75)),
        ("infrastructure", timedelta(minutes=90)),
        ("head-of-operations", timedelta(minutes=120)),
    ]
    assert [s.payload["cycle"] for s in sim.steps(key)] == [0, 0, 0, 1, 1, 1]
    assert len({s.payload["step_id"] for s in sim.steps(key)}) == 6
    exhausted = of(sim, ev.ESCALATION_EXHAUSTED, key)
    assert [(e.payload["level"], e.payload["cycle"]) for e in exhausted] == [(3, 1)]


def test_frontline_ack_keeps_infrastructure_out(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "web-04-down", severity="critical")
    sim.advance_by(timedelta(minutes=10))
    sim.send(ev.ACKNOWLEDGE, ev.Acknowledge(service="web-servers", dedup_key="web-04-down", actor="frontline-bob"))
    sim.advance_by(timedelta(minutes=20))
    assert [name for name, _ in reached(sim, key)] == ["frontline"]
    sim.send(ev.RESOLVE, ev.Resolve(service="web-servers", dedup_key="web-04-down", actor="frontline-bob"))
    sim.run_until_quiet()
    assert [name for name, _ in reached(sim, key)] == ["frontline"]
    assert sim.states[key].timer is None


def test_sla_warns_and_breaches_on_time_for_p1(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "sla", severity="critical")  # critical -> P1: ack 15m, resolve 4h
    sim.advance_by(timedelta(hours=5))
    opened = of(sim, ev.INCIDENT_OPENED, key)[0].at
    news = [
        (h.type, h.payload["clock"], h.payload["fraction"], h.at - opened)
        for h in sim.timeline
        if h.incident_key == key and h.type in (ev.SLA_WARNING, ev.SLA_BREACHED)
    ]
    assert news == [
        ("sla.warning", "acknowledge", 0.5, timedelta(minutes=7, seconds=30)),
        ("sla.warning", "acknowledge", 0.75, timedelta(minutes=11, seconds=15)),
        ("sla.breached", "acknowledge", 1.0, timedelta(minutes=15)),
        ("sla.warning", "resolve", 0.5, timedelta(hours=2)),
        ("sla.warning", "resolve", 0.75, timedelta(hours=3)),
        ("sla.breached", "resolve", 1.0, timedelta(hours=4)),
    ]
