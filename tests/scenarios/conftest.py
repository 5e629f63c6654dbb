"""Scenario tests: the shipped example configuration driven on a virtual clock, exact instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.escalator.config import load_catalog
from services.escalator.core.policy import Catalog
from services.escalator.core.simulator import Happened, Simulator
from shared import events as ev

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "config"
# A Wednesday, 10:00 in Berlin (09:00 UTC): inside business hours.
WEDNESDAY_10_BERLIN = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The example configuration shipped in examples/config."""
    return load_catalog(CONFIG)


@pytest.fixture
def sim(catalog: Catalog) -> Simulator:
    """A simulator starting on a Wednesday morning."""
    return Simulator(catalog, WEDNESDAY_10_BERLIN)


def trigger(sim: Simulator, service: str, dedup: str = "k", **fields: Any) -> str:
    """Trigger an incident now; return its incident key."""
    fields.setdefault("summary", f"{service} problem")
    sim.send(ev.TRIGGER, ev.Trigger(service=service, dedup_key=dedup, **fields))
    return f"{service}/{dedup}"


def reached(sim: Simulator, key: str) -> list[tuple[str | None, timedelta]]:
    """(level name, time since the incident opened) of every step reached, in order."""
    opened = sim.events(ev.INCIDENT_OPENED, key)[0].at
    return [(h.payload["level_name"], h.at - opened) for h in sim.steps(key)]


def of(sim: Simulator, type_: str, key: str) -> list[Happened]:
    """Events of one type for one incident."""
    return sim.events(type_, key)
