"""Reports over time: buckets of opening time (hour, day, week from Monday, UTC), MTTA and MTTR per
group and bucket, every bucket of the range present."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.audit.reports import MAX_BUCKETS, Bucket, GroupBy, IncidentFacts, bucket_start, bucket_starts, series

MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def _incident(
    n: int, opened: datetime, ack: float | None = None, res: float | None = None, **kw: object
) -> IncidentFacts:
    return IncidentFacts(
        incident_id=f"i{n}",
        service=str(kw.get("service", "web")),
        priority=str(kw.get("priority", "P1")),
        opened_at=opened,
        acknowledged_at=opened + timedelta(seconds=ack) if ack is not None else None,
        resolved_at=opened + timedelta(seconds=res) if res is not None else None,
        teams=tuple(kw.get("teams", ("frontline",))),  # type: ignore[arg-type]
    )


def test_bucket_starts_are_utc_hours_days_and_mondays() -> None:
    at = datetime(2026, 11, 27, 15, 42, 7, tzinfo=UTC)  # a Friday
    assert bucket_start(at, Bucket.HOUR) == datetime(2026, 11, 27, 15, tzinfo=UTC)
    assert bucket_start(at, Bucket.DAY) == datetime(2026, 11, 27, tzinfo=UTC)
    assert bucket_start(at, Bucket.WEEK) == MON
    berlin_midnight = datetime.fromisoformat("2026-11-28T00:30:00+01:00")  # still the 27th in UTC
    assert bucket_start(berlin_midnight, Bucket.DAY) == datetime(2026, 11, 27, tzinfo=UTC)


def test_every_bucket_of_the_range_is_present_and_empty_ones_have_no_means() -> None:
    facts = [
        _incident(1, MON + timedelta(hours=9), ack=60, res=600),
        _incident(2, MON + timedelta(hours=10), ack=180, res=None),
        _incident(3, MON + timedelta(days=2, hours=1), ack=None, res=None),
    ]
    out = series(facts, GroupBy.TEAM, Bucket.DAY, MON, MON + timedelta(days=3))
    points = out["frontline"]
    assert [p.start for p in points] == [MON, MON + timedelta(days=1), MON + timedelta(days=2)]
    first, empty, third = points
    assert (first.incidents, first.acknowledged, first.resolved) == (2, 2, 1)
    assert first.mtta_seconds == 120.0
    assert first.mttr_seconds == 600.0
    assert (empty.incidents, empty.mtta_seconds, empty.mttr_seconds) == (0, None, None)
    assert (third.incidents, third.mtta_seconds) == (1, None)


def test_an_incident_reaching_two_teams_counts_in_each_teams_series_once() -> None:
    facts = [
        _incident(1, MON, ack=100, teams=("frontline", "infrastructure")),
        _incident(2, MON, ack=300, teams=("infrastructure",)),
    ]
    out = series(facts, GroupBy.TEAM, Bucket.WEEK, MON, MON + timedelta(days=7))
    assert {g: (p[0].incidents, p[0].mtta_seconds) for g, p in out.items()} == {
        "frontline": (1, 100.0),
        "infrastructure": (2, 200.0),
    }


def test_series_by_priority() -> None:
    facts = [_incident(1, MON, ack=30, priority="P1"), _incident(2, MON + timedelta(minutes=5), ack=90, priority="P3")]
    out = series(facts, GroupBy.PRIORITY, Bucket.HOUR, MON, MON + timedelta(hours=2))
    assert sorted(out) == ["P1", "P3"]
    assert [p.incidents for p in out["P3"]] == [1, 0]
    assert out["P3"][0].as_dict()["start"] == MON.isoformat()


def test_too_many_buckets_are_refused_with_the_way_out() -> None:
    with pytest.raises(ValueError, match="wider bucket"):
        bucket_starts(MON, MON + timedelta(hours=MAX_BUCKETS + 1), Bucket.HOUR)


@given(
    opened=st.lists(st.integers(min_value=0, max_value=14 * 24 * 3600 - 1), min_size=1, max_size=30),
    bucket=st.sampled_from(list(Bucket)),
)
def test_each_incident_lands_in_exactly_one_bucket_of_its_group(opened: list[int], bucket: Bucket) -> None:
    facts = [_incident(n, MON + timedelta(seconds=s), ack=10) for n, s in enumerate(opened)]
    out = series(facts, GroupBy.SERVICE, bucket, MON, MON + timedelta(days=14))
    points = out["web"]
    assert sum(p.incidents for p in points) == len(facts)
    assert all(p.start <= f.opened_at for p in points for f in facts if bucket_start(f.opened_at, bucket) == p.start)
