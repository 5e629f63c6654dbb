"""Business calendars: hours in a zone, holidays, DST, and time counted in them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.escalator.core.calendar import BusinessCalendar

WEEKDAYS = {d: ("09:00-12:00", "13:00-17:00") for d in ("mon", "tue", "wed", "thu", "fri")}
BERLIN = BusinessCalendar(id="b", timezone="Europe/Berlin", hours=WEEKDAYS, holidays=(date(2026, 12, 25),))


def test_lunch_break_and_evening_are_skipped() -> None:
    start = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # Wed 11:30 Berlin
    assert BERLIN.add(start, timedelta(hours=1)) == datetime(2026, 11, 25, 12, 30, tzinfo=UTC)  # 13:30 Berlin
    # 30 min before lunch, 4 h after it, the last hour on Thursday from 09:00.
    assert BERLIN.add(start, timedelta(hours=5, minutes=30)) == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_start_outside_hours_counts_from_the_next_opening() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert BERLIN.add(saturday, timedelta(minutes=1)) == datetime(2026, 11, 30, 8, 1, tzinfo=UTC)


def test_dst_change_keeps_local_opening_hours() -> None:
    # Berlin switches to summer time on Sunday 29 March 2026: 09:00 local is 07:00 UTC from Monday.
    friday = datetime(2026, 3, 27, 15, 59, tzinfo=UTC)  # 16:59 CET
    assert BERLIN.add(friday, timedelta(minutes=2)) == datetime(2026, 3, 30, 7, 1, tzinfo=UTC)


def test_holiday_is_closed() -> None:
    assert not BERLIN.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=UTC))
    assert BERLIN.is_open(datetime(2026, 12, 24, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("hours", "timezone", "message"),
    [
        ({"mon": ("09:00-17:00",)}, "Mars/Olympus", "unknown time zone"),
        ({"mon": ("17:00-09:00",)}, "UTC", "the end must follow the start"),
        ({"mon": ("9-17",)}, "UTC", "is not a time range"),
        ({"funday": ("09:00-17:00",)}, "UTC", "unknown weekday"),
        ({"mon": ("09:00-12:00", "11:00-13:00")}, "UTC", "overlap"),
        ({}, "UTC", "at least one weekday"),
    ],
)
def test_bad_calendars_are_rejected_with_a_reason(
    hours: dict[str, tuple[str, ...]], timezone: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        BusinessCalendar(id="x", timezone=timezone, hours=hours)


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(instants, st.integers(0, 60 * 24 * 20))
def test_add_then_between_gives_back_the_duration(start: datetime, minutes: int) -> None:
    delta = timedelta(minutes=minutes)
    end = BERLIN.add(start, delta)
    assert end >= start
    assert BERLIN.between(start, end) == delta
    if minutes:
        assert BERLIN.is_open(end - timedelta(microseconds=1))
