"""SLA clocks pause while waiting on the customer and resume with the time already used."""

from __future__ import annotations

from datetime import timedelta

from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, trigger


def test_paused_time_does_not_count_towards_the_resolve_target(sim: Simulator) -> None:
    key = trigger(sim, "web-servers", "waiting", severity="critical")  # P1: resolve 4h
    sim.send(ev.ACKNOWLEDGE, ev.Acknowledge(service="web-servers", dedup_key="waiting"))
    sim.advance_by(timedelta(hours=1))
    sim.send(ev.PAUSE_SLA, ev.PauseSla(service="web-servers", dedup_key="waiting", reason="waiting on customer"))
    sim.advance_by(timedelta(hours=10))
    assert [e.payload["fraction"] for e in of(sim, ev.SLA_WARNING, key) if e.payload["clock"] == "resolve"] == []
    sim.send(ev.RESUME_SLA, ev.ResumeSla(service="web-servers", dedup_key="waiting"))
    sim.advance_by(timedelta(hours=3))
    opened = of(sim, ev.INCIDENT_OPENED, key)[0].at
    resolve_news = [
        (e.type, e.payload["fraction"], e.at - opened)
        for e in sim.timeline
        if e.incident_key == key and e.type in (ev.SLA_WARNING, ev.SLA_BREACHED) and e.payload["clock"] == "resolve"
    ]
    assert resolve_news == [
        ("sla.warning", 0.5, timedelta(hours=12)),  # 1h before the pause + 1h after it
        ("sla.warning", 0.75, timedelta(hours=13)),
        ("sla.breached", 1.0, timedelta(hours=14)),
    ]
