"""Durations as written in policies: parsing, canonical formatting, round trips, readable errors."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.escalator.core.durations import Duration, format_duration, parse_duration

SETTINGS = settings(max_examples=200, deadline=None, database=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("250ms", timedelta(milliseconds=250)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("1.5h", timedelta(minutes=90)),
        ("0.25s", timedelta(milliseconds=250)),
        ("0s", timedelta(0)),
        ("30m2h", timedelta(hours=2, minutes=30)),  # order is free
        ("1m1m", timedelta(minutes=2)),  # repeated units add up
        (" 1h 30m ", timedelta(minutes=90)),  # spaces are ignored
        (45, timedelta(seconds=45)),
        (0, timedelta(0)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=7), timedelta(minutes=7)),
    ],
)
def test_parse(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=2), "2d"),
        (timedelta(days=1, hours=1, minutes=1, seconds=1, milliseconds=500), "1d1h1m1s500ms"),
        (timedelta(milliseconds=1), "1ms"),
        (timedelta(days=400), "400d"),
        (timedelta(hours=25), "1d1h"),
        (timedelta(microseconds=1_600), "2ms"),  # whole milliseconds
    ],
)
def test_format_is_canonical(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


UNREADABLE = "is not a duration; write e.g. '90s', '5m', '1h30m'"
EXPECTED = "a duration such as '5m' or '30s' is expected"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", f"'5x' {UNREADABLE}"),
        ("", f"'' {UNREADABLE}"),
        ("   ", f"'   ' {UNREADABLE}"),
        ("m5", f"'m5' {UNREADABLE}"),
        ("5", f"'5' {UNREADABLE}"),
        ("-5m", f"'-5m' {UNREADABLE}"),
        ("5m30", f"'5m30' {UNREADABLE}"),
        ("1h-30m", f"'1h-30m' {UNREADABLE}"),
        ("five minutes", f"'five minutes' {UNREADABLE}"),
        ("1e3s", f"'1e3s' {UNREADABLE}"),
        ("5M", f"'5M' {UNREADABLE}"),
        (".5s", f"'.5s' {UNREADABLE}"),
        (-3, "a duration cannot be negative"),
        (-0.5, "a duration cannot be negative"),
        (True, EXPECTED),
        (None, EXPECTED),
        ([1], EXPECTED),
        ({"m": 5}, EXPECTED),
    ],
)
def test_bad_durations_raise_a_readable_value_error(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e20, "99999999999d", "1000000000d"])
def test_non_finite_or_huge_durations_raise_a_readable_value_error(value: Any) -> None:
    # YAML `.inf`/`.nan` or a typo with many digits must give a readable ValueError, not OverflowError.
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_a_negative_timedelta_is_refused_like_a_negative_number() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(timedelta(seconds=-5))


class _Model(BaseModel):
    delay: Duration


def test_the_annotated_type_parses_and_serialises_canonically() -> None:
    model = _Model(delay="90s")
    assert model.delay == timedelta(seconds=90)
    assert model.model_dump(mode="json") == {"delay": "1m30s"}
    assert _Model.model_validate_json(model.model_dump_json()) == model


def test_the_annotated_type_reports_the_reason_as_a_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        _Model(delay="5 minutes")
    (error,) = caught.value.errors()
    assert error["loc"] == ("delay",)
    assert error["msg"] == f"Value error, '5 minutes' {UNREADABLE}"


@SETTINGS
@given(st.integers(0, 10**11))
def test_format_then_parse_round_trips_to_the_millisecond(ms: int) -> None:
    delta = timedelta(milliseconds=ms)
    text = format_duration(delta)
    assert parse_duration(text) == delta
    assert format_duration(parse_duration(text)) == text


parts = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h", "d"])), min_size=1, max_size=6)
SIZE_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


@SETTINGS
@given(parts)
def test_parse_then_format_gives_the_canonical_text_of_the_same_length(written: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in written)
    total_ms = sum(n * SIZE_MS[unit] for n, unit in written)
    parsed = parse_duration(text)
    assert parsed == timedelta(milliseconds=total_ms)
    canonical = format_duration(parsed)
    assert parse_duration(canonical) == parsed
    # Canonical: units in decreasing order, each at most once, below the next unit's size.
    days, rest = divmod(total_ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    expected = "".join(
        f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")) if n
    )
    assert canonical == (expected or "0s")
