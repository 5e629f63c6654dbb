"""Reads of the audit log behind the console's incident list and pages (PostgreSQL, asyncpg)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.console.incidents import Command, Fact, IncidentView, clocks, fold
from services.escalator.core.policy import Catalog
from shared import events as ev
from shared.topics import ESCALATION_EVENTS, INCIDENT_COMMANDS

# Clocks of at most this many open incidents are replayed per list (the rest show none).
CLOCKS_PER_LIST = 200
_SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class IncidentQuery:
    """Filters of the incident list; all given ones must hold."""

    service: str | None = None
    team: str | None = None
    priority: str | None = None
    state: str | None = None
    since: datetime | None = None
    limit: int = 200
    incident_id: uuid.UUID | None = None

    def admits(self, view: IncidentView) -> bool:
        """True when the folded incident passes the filters read models cannot apply in SQL."""
        return (
            (self.incident_id is None or view.incident_id == str(self.incident_id))
            and (self.service is None or view.service == self.service)
            and (self.priority is None or view.priority == self.priority)
            and (self.team is None or self.team in view.teams)
            and (self.state is None or view.state == self.state or (self.state == "open" and view.is_open))
        )


# Incidents opened since $1, and older ones never resolved (still open, however old).
_OPENED = f"""
SELECT i.incident_id, i.incident_key FROM audit_log i
WHERE i.type = '{ev.INCIDENT_OPENED}'
  AND ($1::timestamptz IS NULL OR i.occurred_at >= $1 OR NOT EXISTS (
      SELECT 1 FROM audit_log r WHERE r.incident_id = i.incident_id AND r.type = '{ev.INCIDENT_RESOLVED}'))
  AND ($2::text IS NULL OR i.service = $2) AND ($3::text IS NULL OR i.priority = $3)
  AND ($5::uuid IS NULL OR i.incident_id = $5)
ORDER BY i.occurred_at DESC, i.seq DESC LIMIT $4
"""  # noqa: S608 - a constant, no input

_FACTS = f"""
SELECT incident_id, incident_key, type, occurred_at, payload, actor, teams FROM audit_log
WHERE incident_id = ANY($1::uuid[]) AND topic = '{ESCALATION_EVENTS}'
ORDER BY incident_id, occurred_at, seq
"""  # noqa: S608 - a constant, no input

_COMMANDS = f"""
SELECT event_id, incident_key, type, occurred_at, payload FROM audit_log
WHERE topic = '{INCIDENT_COMMANDS}' AND incident_key = ANY($1::text[]) AND occurred_at >= $2
ORDER BY occurred_at, seq
"""  # noqa: S608 - a constant, no input


def _payload(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


async def _views(conn: asyncpg.Connection, ids: Sequence[tuple[uuid.UUID, str]], now: datetime) -> list[IncidentView]:
    facts: dict[uuid.UUID, list[Fact]] = {i: [] for i, _ in ids}
    for r in await conn.fetch(_FACTS, [i for i, _ in ids]):
        facts[r["incident_id"]].append(
            Fact(r["type"], r["occurred_at"], _payload(r["payload"]), r["actor"], tuple(r["teams"] or ()))
        )
    return [fold(str(i), key, facts[i], now) for i, key in ids]


async def _commands(conn: asyncpg.Connection, views: Sequence[IncidentView]) -> dict[str, list[Command]]:
    """Each incident's commands: those of its key from the trigger that opened it on."""
    if not views:
        return {}
    earliest = min(datetime.fromisoformat(v.opened_at) for v in views if v.opened_at)
    by_key: dict[str, list[Command]] = {}
    # The trigger may be recorded a moment before the opening; look a minute further back.
    keys = sorted({v.incident_key for v in views})
    for r in await conn.fetch(_COMMANDS, keys, earliest - _SLACK):
        by_key.setdefault(r["incident_key"], []).append(
            Command(r["event_id"], r["type"], r["occurred_at"], _payload(r["payload"]))
        )
    out: dict[str, list[Command]] = {}
    for view in views:
        commands = by_key.get(view.incident_key, [])
        first = next((n for n, c in enumerate(commands) if str(c.event_id) == view.incident_id), None)
        out[view.incident_id] = commands[first:] if first is not None else []
    return out


async def _with_clocks(
    conn: asyncpg.Connection, catalog: Catalog | None, views: list[IncidentView], now: datetime
) -> dict[str, dict[str, Any]]:
    """Fill each open view's next escalation; return every view's clocks by incident id."""
    open_views = [v for v in views if v.is_open and v.opened_at][:CLOCKS_PER_LIST]
    if catalog is None or not open_views:
        return {}
    commands = await _commands(conn, open_views)
    out = {}
    for view in open_views:
        result = clocks(catalog, view, commands[view.incident_id], now)
        view.next_escalation = result.next_escalation
        if result.snoozed_until is not None and view.state == "acknowledged":
            view.state, view.snoozed_until = "snoozed", result.snoozed_until
        out[view.incident_id] = result.as_dict()
    return out


async def list_incidents(
    pool: asyncpg.Pool, catalog: Catalog | None, query: IncidentQuery, now: datetime
) -> list[IncidentView]:
    """The latest incidents matching the query, newest first, with their next escalation."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_OPENED, query.since, query.service, query.priority, query.limit, query.incident_id)
        views = await _views(conn, [(r["incident_id"], r["incident_key"]) for r in rows], now)
        await _with_clocks(conn, catalog, views, now)
    return [v for v in views if query.admits(v)]


async def incidents_by_id(
    pool: asyncpg.Pool, catalog: Catalog | None, ids: Sequence[uuid.UUID], now: datetime
) -> list[IncidentView]:
    """The named incidents (those with an opening on record), with their next escalation."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT incident_id, incident_key FROM audit_log WHERE incident_id = ANY($1::uuid[])"  # noqa: S608
            f" AND type = '{ev.INCIDENT_OPENED}'",
            list(ids),
        )
        views = await _views(conn, [(r["incident_id"], r["incident_key"]) for r in rows], now)
        await _with_clocks(conn, catalog, views, now)
    return views


async def incident_detail(
    pool: asyncpg.Pool, catalog: Catalog | None, incident_id: uuid.UUID, now: datetime
) -> dict[str, Any] | None:
    """One incident with its clocks, or None when it never opened."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT incident_id, incident_key FROM audit_log WHERE incident_id = $1"  # noqa: S608
            f" AND type = '{ev.INCIDENT_OPENED}' LIMIT 1",
            incident_id,
        )
        if row is None:
            return None
        (view,) = await _views(conn, [(row["incident_id"], row["incident_key"])], now)
        found = await _with_clocks(conn, catalog, [view], now)
    default: dict[str, Any] = {
        "next_escalation": None,
        "sla": [],
        "snoozed_until": None,
        "policy_current": True,
        "note": None,
    }
    if catalog is None and view.is_open:
        default["note"] = "clocks unavailable: the config folder does not load"
    return {"incident": view.as_dict(), "clocks": found.get(view.incident_id, default), "now": now.isoformat()}
