"""Durations as people write them in policies: `90s`, `5m`, `1h30m`, `2d`, or plain seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
# Far longer than any delay, SLA or snooze; a bound that keeps timedelta arithmetic from overflowing.
MAX_DURATION = timedelta(days=100_000)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> timedelta:
    """Parse `1h30m`, `45s`, `250ms`, a number of seconds, or a timedelta."""
    if isinstance(value, timedelta):
        return _bounded(value)
    if isinstance(value, bool):
        raise ValueError("a duration such as '5m' or '30s' is expected")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a duration must be a finite number of seconds")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        if value > MAX_DURATION.total_seconds():
            raise ValueError(f"a duration cannot exceed {MAX_DURATION.days} days")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("a duration such as '5m' or '30s' is expected")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration; write e.g. '90s', '5m', '1h30m'")
    if total > MAX_DURATION.total_seconds():
        raise ValueError(f"{value!r}: a duration cannot exceed {MAX_DURATION.days} days")
    return timedelta(seconds=total)


def _bounded(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("a duration cannot be negative")
    if value > MAX_DURATION:
        raise ValueError(f"a duration cannot exceed {MAX_DURATION.days} days")
    return value


def format_duration(value: timedelta) -> str:
    """Format a duration in the same notation `parse_duration` reads (whole ms precision)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
