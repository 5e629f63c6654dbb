"""Business-hours calendars: weekly hours in a time zone, holidays, and time counted in them."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
# Longest stretch searched for open hours before giving up (a calendar must open at least once a year).
_MAX_DAYS = 3 * 366


def _minutes(text: str) -> tuple[int, int]:
    match = _RANGE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a time range; write e.g. '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
        raise ValueError(f"{text!r}: the end must follow the start, within one day (24:00 at most)")
    return start, end


class BusinessCalendar(BaseModel):
    """Weekly business hours in one time zone, minus holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    timezone: str = Field(examples=["Europe/Berlin"])
    hours: dict[str, tuple[str, ...]] = Field(
        description="Open ranges per weekday (mon..sun), e.g. {mon: ['09:00-12:00', '13:00-17:00']}."
    )
    holidays: tuple[date, ...] = Field(default=(), description="Whole days closed, in the calendar's zone.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, ranges in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
            spans = sorted(_minutes(r) for r in ranges)
            for (_, end), (start, _) in itertools.pairwise(spans):
                if start < end:
                    raise ValueError(f"{day}: ranges overlap")
        return value

    @model_validator(mode="after")
    def _opens_sometime(self) -> BusinessCalendar:
        if not any(self.hours.get(d) for d in WEEKDAYS):
            raise ValueError("a calendar needs open hours on at least one weekday")
        return self

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _spans(self) -> dict[int, list[tuple[int, int]]]:
        return {i: sorted(_minutes(r) for r in self.hours.get(d, ())) for i, d in enumerate(WEEKDAYS)}

    @cached_property
    def _holidays(self) -> frozenset[date]:
        return frozenset(self.holidays)

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """Return the open intervals of one local day, as UTC instants."""
        if day in self._holidays:
            return []
        out = []
        for start, end in self._spans[day.weekday()]:
            s = datetime.combine(day, time(start // 60, start % 60), self._zone)
            e = (
                datetime.combine(day + timedelta(days=1), time(0), self._zone)
                if end == 24 * 60
                else datetime.combine(day, time(end // 60, end % 60), self._zone)
            )
            out.append((s.astimezone(UTC), e.astimezone(UTC)))
        return out

    def is_open(self, at: datetime) -> bool:
        """True when `at` falls in business hours."""
        local = at.astimezone(self._zone).date()
        return any(s <= at < e for day in (local - timedelta(days=1), local) for s, e in self.intervals(day))

    def add(self, start: datetime, delta: timedelta) -> datetime:
        """Return the instant when `delta` of business time has passed since `start`."""
        remaining = delta
        if remaining <= timedelta(0):
            return start
        day = start.astimezone(self._zone).date() - timedelta(days=1)
        for _ in range(_MAX_DAYS):
            for s, e in self.intervals(day):
                if e <= start:
                    continue
                begin = max(s, start)
                available = e - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.id!r} has no open hours within {_MAX_DAYS} days of {start}")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Return the business time between two instants (zero if end <= start)."""
        total = timedelta(0)
        if end <= start:
            return total
        day = start.astimezone(self._zone).date() - timedelta(days=1)
        last = end.astimezone(self._zone).date()
        while day <= last:
            for s, e in self.intervals(day):
                lo, hi = max(s, start), min(e, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total
