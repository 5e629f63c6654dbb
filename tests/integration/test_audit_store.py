"""The audit store against the real PostgreSQL: migrations, idempotent batches, offsets, timeline."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.audit.migrate import migrate, migration_files
from services.audit.store import AuditStore, AuditStoreError, Record
from services.audit.verify import verify_items
from shared import events as ev
from shared.envelope import Envelope, new_envelope

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


def _trigger(key: str, at: datetime) -> Envelope:
    payload = ev.Trigger(service="db", dedup_key=key, summary="disk full")
    return new_envelope(ev.TRIGGER, payload, incident_key=f"db/{key}", occurred_at=at)


def _opened(trigger: Envelope, at: datetime) -> Envelope:
    payload = ev.IncidentOpened(
        service="db",
        dedup_key="k",
        summary="disk full",
        severity=ev.Severity.ERROR,
        policy_id="p",
        policy_hash="h",
        priority="P2",
    )
    return new_envelope(
        ev.INCIDENT_OPENED,
        payload,
        incident_key=trigger.incident_key,
        occurred_at=at,
        incident_id=trigger.event_id,
        cause=trigger,
    )


async def test_migrations_apply_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn) == []
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _, _ in migration_files()]


async def test_batch_is_idempotent_on_event_id_and_stores_offsets(pool: asyncpg.Pool) -> None:
    store = AuditStore(pool)
    trig = _trigger("idem", T0)
    records = [Record("incidents.commands", 3, 41, trig)]
    assert await store.write_batch("it-idem", records, {("incidents.commands", 3): 42}) == 1
    assert await store.write_batch("it-idem", records, {("incidents.commands", 3): 42}) == 0
    count = await pool.fetchval("SELECT count(*) FROM audit_log WHERE event_id = $1", trig.event_id)
    assert count == 1
    assert await store.offsets("it-idem") == {("incidents.commands", 3): 42}


async def test_failed_batch_stores_neither_rows_nor_offsets(pool: asyncpg.Pool) -> None:
    store = AuditStore(pool)
    good = _trigger("atomic", T0)
    # A constraint that rejects this consumer's offset row makes the second statement fail.
    broken = {("incidents.commands", 0): 1}
    await pool.execute("ALTER TABLE consumer_offsets ADD CONSTRAINT it_reject CHECK (consumer <> 'it-atomic')")
    try:
        with pytest.raises(AuditStoreError):
            await store.write_batch("it-atomic", [Record("incidents.commands", 0, 0, good)], broken)
    finally:
        await pool.execute("ALTER TABLE consumer_offsets DROP CONSTRAINT it_reject")
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE event_id = $1", good.event_id) == 0
    assert await store.offsets("it-atomic") == {}


async def test_timeline_holds_the_incident_and_its_causing_commands_in_order(pool: asyncpg.Pool) -> None:
    store = AuditStore(pool)
    trig = _trigger("timeline", T0)
    opened = _opened(trig, T0 + timedelta(milliseconds=5))
    unrelated = _trigger("other", T0)
    await store.write_batch(
        "it-timeline",
        [
            Record("escalations.events", 1, 0, opened),
            Record("incidents.commands", 1, 0, trig),
            Record("incidents.commands", 2, 0, unrelated),
        ],
        {},
    )
    entries = await store.timeline(trig.event_id)
    assert [e["type"] for e in entries] == ["incident.trigger", "incident.opened"]
    assert entries[0]["event_id"] == str(trig.event_id)
    assert entries[1]["causation_id"] == str(trig.event_id)
    assert entries[1]["payload"]["policy_id"] == "p"


async def test_export_streams_every_row_as_its_envelope(pool: asyncpg.Pool) -> None:
    store = AuditStore(pool)
    trig = _trigger("export", T0)
    await store.write_batch("it-export", [Record("incidents.commands", 5, 9, trig)], {})
    rows = [row async for row in store.export(batch=2)]
    mine = [r for r in rows if r["event_id"] == str(trig.event_id)]
    assert len(mine) == 1
    assert mine[0]["topic"] == "incidents.commands"
    assert Envelope.model_validate({k: v for k, v in mine[0].items() if k in Envelope.model_fields}) == trig
    assert mine[0]["chain"] == "incidents.commands/5"
    assert len(mine[0]["hash"]) == 64
    assert len(rows) == await pool.fetchval("SELECT count(*) FROM audit_log")


async def test_a_nul_character_is_stored_verifiably_and_does_not_stop_the_audit(pool: asyncpg.Pool) -> None:
    """JSON allows U+0000, PostgreSQL text does not: the searchable columns get U+FFFD in its place,
    the payload keeps the exact JSON, and the chain still verifies."""
    store = AuditStore(pool)
    payload = ev.Acknowledge(service="db", dedup_key="nul\x00key", actor="eve\x00")
    env = new_envelope(ev.ACKNOWLEDGE, payload, incident_key="db/nul\x00key", occurred_at=T0)
    assert await store.write_batch("it-nul", [Record("incidents.commands", 5, 0, env)], {}) == 1
    row = await pool.fetchrow("SELECT incident_key, actor, payload FROM audit_log WHERE event_id = $1", env.event_id)
    assert (row["incident_key"], row["actor"]) == ("db/nul\ufffdkey", "eve\ufffd")
    assert json.loads(row["payload"])["dedup_key"] == "nul\x00key"
    report = await verify_items(store.evidence(), None)
    assert report.ok, report.text()
