"""Delays in business minutes skip nights, the weekend and holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.escalator.core.policy import Catalog
from services.escalator.core.simulator import Simulator
from tests.scenarios.conftest import trigger


def test_friday_afternoon_complaint_escalates_monday_morning(catalog: Catalog) -> None:
    # Friday 27 Nov 2026, 15:30 Berlin (14:30 UTC): 1h30 of business time left that day.
    sim = Simulator(catalog, datetime(2026, 11, 27, 14, 30, tzinfo=UTC))
    key = trigger(sim, "customer-support", "weekend")
    sim.advance_by(timedelta(days=3))
    at = sim.steps(key)[-1].at
    # 4h - 1h30 = 2h30 on Monday from 09:00 Berlin -> 11:30 Berlin = 10:30 UTC.
    assert (sim.steps(key)[-1].payload["level_name"], at) == (
        "service-manager",
        datetime(2026, 11, 30, 10, 30, tzinfo=UTC),
    )


def test_christmas_holidays_are_skipped(catalog: Catalog) -> None:
    # Wednesday 23 Dec 2026 16:00 Berlin (15:00 UTC); 24-26 Dec are holidays, 27 is a Sunday.
    sim = Simulator(catalog, datetime(2026, 12, 23, 15, 0, tzinfo=UTC))
    key = trigger(sim, "customer-support", "xmas")
    sim.advance_by(timedelta(days=7))
    # 1h on the 23rd, 3h on Monday 28 Dec from 09:00 Berlin -> 12:00 Berlin = 11:00 UTC.
    assert sim.steps(key)[-1].at == datetime(2026, 12, 28, 11, 0, tzinfo=UTC)


def test_business_time_sla_counts_only_open_hours(catalog: Catalog) -> None:
    sim = Simulator(catalog, datetime(2026, 11, 27, 14, 30, tzinfo=UTC))  # Friday 15:30 Berlin
    key = trigger(sim, "customer-support", "sla-weekend")  # P3: acknowledge 4h business time
    sim.advance_by(timedelta(days=3))
    breach = [h for h in sim.events("sla.breached", key) if h.payload["clock"] == "acknowledge"]
    assert [b.at for b in breach] == [datetime(2026, 11, 30, 10, 30, tzinfo=UTC)]
