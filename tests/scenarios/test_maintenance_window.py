"""In a maintenance window incidents open, escalation is held, and it resumes when the window ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.escalator.core.policy import Catalog
from services.escalator.core.simulator import Simulator
from shared import events as ev
from tests.scenarios.conftest import of, trigger

WINDOW_START = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def test_incident_opened_in_the_window_is_held_until_it_ends(catalog: Catalog) -> None:
    sim = Simulator(catalog, WINDOW_START + timedelta(hours=1))
    key = trigger(sim, "core-network", "switch-reboot", severity="error")
    assert of(sim, ev.INCIDENT_OPENED, key)  # the incident opens ...
    assert sim.steps(key) == []  # ... but nobody is paged
    held = of(sim, ev.ESCALATION_HELD, key)
    assert [(h.payload["level"], h.payload["until"], h.payload["reason"]) for h in held] == [
        (1, WINDOW_END.isoformat().replace("+00:00", "Z"), "core switch firmware upgrade")
    ]
    sim.advance_to(WINDOW_END - timedelta(seconds=1))
    assert sim.steps(key) == []
    sim.advance_to(WINDOW_END + timedelta(minutes=10))
    assert [(s.payload["level_name"], s.at) for s in sim.steps(key)] == [
        ("noc", WINDOW_END),
        ("network-engineering", WINDOW_END + timedelta(minutes=10)),
    ]


def test_a_step_falling_into_the_window_waits_for_its_end(catalog: Catalog) -> None:
    sim = Simulator(catalog, WINDOW_START - timedelta(minutes=5))
    key = trigger(sim, "core-network", "before-window", severity="error")
    sim.advance_to(WINDOW_END + timedelta(seconds=1))
    assert [(s.payload["level_name"], s.at) for s in sim.steps(key)] == [
        ("noc", WINDOW_START - timedelta(minutes=5)),
        ("network-engineering", WINDOW_END),  # due at 22:05, inside the window
    ]


def test_outside_the_window_nothing_is_held(catalog: Catalog) -> None:
    sim = Simulator(catalog, WINDOW_END + timedelta(hours=1))
    key = trigger(sim, "core-network", "after-window", severity="error")
    assert of(sim, ev.ESCALATION_HELD, key) == []
    assert len(sim.steps(key)) == 1
