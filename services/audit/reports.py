"""Reports over a time range per service, team or priority: counts, MTTA, MTTR, escalations per level,
SLA compliance and who acknowledged. The SQL gathers one line of facts per incident; `summarize`
(pure) groups them."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg

NO_TEAM = "(no team)"
_SEP = "\x1f"


class GroupBy(StrEnum):
    """What a report's lines are."""

    SERVICE = "service"
    TEAM = "team"
    PRIORITY = "priority"


@dataclass(frozen=True)
class IncidentFacts:
    """What the history says about one incident opened in the range."""

    incident_id: str
    service: str
    priority: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    levels: tuple[int, ...] = ()
    teams: tuple[str, ...] = ()
    sla_breaches: int = 0
    sla_warnings: int = 0


@dataclass
class ReportLine:
    """One group's figures."""

    group: str
    incidents: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mtta_seconds: float | None = None
    mttr_seconds: float | None = None
    escalations_by_level: dict[int, int] = field(default_factory=dict)
    sla_breaches: int = 0
    sla_warnings: int = 0
    incidents_within_sla: int = 0
    sla_compliance: float | None = None
    acknowledged_by: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (level keys as text)."""
        return {
            **self.__dict__,
            "escalations_by_level": {str(k): v for k, v in sorted(self.escalations_by_level.items())},
        }


def _groups(facts: IncidentFacts, by: GroupBy) -> tuple[str, ...]:
    if by is GroupBy.SERVICE:
        return (facts.service,)
    if by is GroupBy.PRIORITY:
        return (facts.priority,)
    return facts.teams or (NO_TEAM,)


def summarize(incidents: Iterable[IncidentFacts], by: GroupBy) -> list[ReportLine]:
    """Group incidents; an incident that reached several teams counts once under each of them."""
    members: dict[str, list[IncidentFacts]] = {}
    for facts in incidents:
        for group in _groups(facts, by):
            members.setdefault(group, []).append(facts)
    lines = []
    for group, items in sorted(members.items()):
        ttas = [(i.acknowledged_at - i.opened_at).total_seconds() for i in items if i.acknowledged_at]
        ttrs = [(i.resolved_at - i.opened_at).total_seconds() for i in items if i.resolved_at]
        levels: Counter[int] = Counter(level for i in items for level in i.levels)
        ackers: Counter[str] = Counter(i.acknowledged_by for i in items if i.acknowledged_by)
        within = sum(1 for i in items if i.sla_breaches == 0)
        lines.append(
            ReportLine(
                group=group,
                incidents=len(items),
                acknowledged=len(ttas),
                resolved=len(ttrs),
                mtta_seconds=statistics.fmean(ttas) if ttas else None,
                mttr_seconds=statistics.fmean(ttrs) if ttrs else None,
                escalations_by_level=dict(sorted(levels.items())),
                sla_breaches=sum(i.sla_breaches for i in items),
                sla_warnings=sum(i.sla_warnings for i in items),
                incidents_within_sla=within,
                sla_compliance=within / len(items),
                acknowledged_by=dict(ackers.most_common()),
            )
        )
    return lines


class Bucket(StrEnum):
    """The width of one point of a report over time."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


_WIDTH = {Bucket.HOUR: timedelta(hours=1), Bucket.DAY: timedelta(days=1), Bucket.WEEK: timedelta(weeks=1)}
MAX_BUCKETS = 1000


def bucket_start(at: datetime, bucket: Bucket) -> datetime:
    """The start (UTC) of the bucket holding `at`: the hour, the day, or the week from Monday 00:00."""
    utc = at.astimezone(UTC)
    if bucket is Bucket.HOUR:
        return utc.replace(minute=0, second=0, microsecond=0)
    day = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if bucket is Bucket.DAY else day - timedelta(days=day.weekday())


def bucket_starts(since: datetime, until: datetime, bucket: Bucket) -> list[datetime]:
    """Every bucket start from the one holding `since` up to before `until`."""
    first, width = bucket_start(since, bucket), _WIDTH[bucket]
    count = max(0, -((first - until) // width))
    if count > MAX_BUCKETS:
        raise ValueError(f"{count} {bucket.value} buckets; at most {MAX_BUCKETS}: choose a wider bucket")
    return [first + n * width for n in range(count)]


@dataclass(frozen=True)
class SeriesPoint:
    """One group's figures for the incidents opened in one bucket."""

    start: datetime
    incidents: int
    acknowledged: int
    resolved: int
    mtta_seconds: float | None
    mttr_seconds: float | None
    sla_breaches: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**self.__dict__, "start": self.start.isoformat()}


def series(
    incidents: Iterable[IncidentFacts], by: GroupBy, bucket: Bucket, since: datetime, until: datetime
) -> dict[str, list[SeriesPoint]]:
    """MTTA and MTTR per group and bucket of opening time; every bucket of the range has a point
    (empty buckets with counts 0 and no means), so charts show gaps as gaps."""
    starts = bucket_starts(since, until, bucket)
    cells: dict[str, dict[datetime, list[IncidentFacts]]] = {}
    for facts in incidents:
        for group in _groups(facts, by):
            cells.setdefault(group, {}).setdefault(bucket_start(facts.opened_at, bucket), []).append(facts)
    out: dict[str, list[SeriesPoint]] = {}
    for group, by_start in sorted(cells.items()):
        points = []
        for start in starts:
            lines = summarize(by_start.get(start, []), by)
            figures = next((x for x in lines if x.group == group), ReportLine(group=group))
            points.append(
                SeriesPoint(
                    start=start,
                    incidents=figures.incidents,
                    acknowledged=figures.acknowledged,
                    resolved=figures.resolved,
                    mtta_seconds=figures.mtta_seconds,
                    mttr_seconds=figures.mttr_seconds,
                    sla_breaches=figures.sla_breaches,
                )
            )
        out[group] = points
    return out


_FACTS = """
SELECT i.incident_id, i.service, coalesce(i.priority, '') AS priority, i.occurred_at AS opened_at,
       min(e.occurred_at) FILTER (WHERE e.type = 'incident.acknowledged') AS acknowledged_at,
       min(e.occurred_at) FILTER (WHERE e.type = 'incident.resolved') AS resolved_at,
       (array_agg(e.actor ORDER BY e.occurred_at)
            FILTER (WHERE e.type = 'incident.acknowledged' AND e.actor IS NOT NULL))[1] AS acknowledged_by,
       array_agg((e.payload->>'level')::int ORDER BY e.occurred_at)
            FILTER (WHERE e.type = 'escalation.step_reached') AS levels,
       string_agg(array_to_string(e.teams, E'\\x1f'), E'\\x1f')
            FILTER (WHERE e.type = 'escalation.step_reached') AS teams,
       count(e.seq) FILTER (WHERE e.type = 'sla.breached') AS sla_breaches,
       count(e.seq) FILTER (WHERE e.type = 'sla.warning') AS sla_warnings
FROM audit_log i
LEFT JOIN audit_log e ON e.incident_id = i.incident_id AND e.type IN
     ('incident.acknowledged', 'incident.resolved', 'escalation.step_reached', 'sla.breached', 'sla.warning')
WHERE i.type = 'incident.opened' AND i.occurred_at >= $1 AND i.occurred_at < $2
GROUP BY i.incident_id, i.service, i.priority, i.occurred_at
"""


async def incident_facts(pool: asyncpg.Pool, since: datetime, until: datetime) -> list[IncidentFacts]:
    """One line of facts per incident opened in [since, until)."""
    rows = await pool.fetch(_FACTS, since, until)
    return [
        IncidentFacts(
            incident_id=str(r["incident_id"]),
            service=r["service"],
            priority=r["priority"] or "(none)",
            opened_at=r["opened_at"],
            acknowledged_at=r["acknowledged_at"],
            resolved_at=r["resolved_at"],
            acknowledged_by=r["acknowledged_by"],
            levels=tuple(r["levels"] or ()),
            teams=tuple(sorted({t for t in (r["teams"] or "").split(_SEP) if t})),
            sla_breaches=r["sla_breaches"],
            sla_warnings=r["sla_warnings"],
        )
        for r in rows
    ]
