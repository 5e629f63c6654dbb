"""Reports: grouping, MTTA/MTTR, escalations per level, SLA compliance, who acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.audit.reports import NO_TEAM, GroupBy, IncidentFacts, summarize

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _incident(n: int, **kw: object) -> IncidentFacts:
    base: dict[str, object] = {"incident_id": f"i{n}", "service": "web", "priority": "P1", "opened_at": T0}
    base.update(kw)
    return IncidentFacts(**base)  # type: ignore[arg-type]


def test_service_report_figures() -> None:
    incidents = [
        _incident(
            1,
            acknowledged_at=T0 + timedelta(minutes=4),
            resolved_at=T0 + timedelta(minutes=30),
            acknowledged_by="alice",
            levels=(1, 2),
            teams=("frontline", "infrastructure"),
        ),
        _incident(
            2,
            acknowledged_at=T0 + timedelta(minutes=2),
            acknowledged_by="alice",
            levels=(1,),
            teams=("frontline",),
            sla_breaches=1,
        ),
        _incident(3, service="db", levels=(1, 2, 3), sla_warnings=2),
    ]
    (web,) = (line for line in summarize(incidents, GroupBy.SERVICE) if line.group == "web")
    assert (web.incidents, web.acknowledged, web.resolved) == (2, 2, 1)
    assert web.mtta_seconds == 180.0
    assert web.mttr_seconds == 1800.0
    assert web.escalations_by_level == {1: 2, 2: 1}
    assert (web.sla_breaches, web.incidents_within_sla, web.sla_compliance) == (1, 1, 0.5)
    assert web.acknowledged_by == {"alice": 2}
    by_team = {line.group: line.incidents for line in summarize(incidents, GroupBy.TEAM)}
    assert by_team == {"frontline": 2, "infrastructure": 1, NO_TEAM: 1}
    (db,) = (line for line in summarize(incidents, GroupBy.SERVICE) if line.group == "db")
    assert db.mtta_seconds is None
    assert db.sla_compliance == 1.0
    assert db.sla_warnings == 2


@given(
    st.lists(
        st.tuples(st.sampled_from(["web", "db", "net"]), st.sampled_from(["P1", "P2", "P3"]), st.booleans()),
        max_size=30,
    )
)
def test_every_incident_is_counted_once_per_service_and_priority(rows: list[tuple[str, str, bool]]) -> None:
    incidents = [
        _incident(i, service=s, priority=p, acknowledged_at=T0 + timedelta(seconds=i) if acked else None)
        for i, (s, p, acked) in enumerate(rows)
    ]
    for by in (GroupBy.SERVICE, GroupBy.PRIORITY):
        lines = summarize(incidents, by)
        assert sum(line.incidents for line in lines) == len(incidents)
        assert sum(line.acknowledged for line in lines) == sum(1 for *_, acked in rows if acked)
