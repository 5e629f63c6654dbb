"""PostgreSQL adapter of the audit log: rows and consumer offsets written in one transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.envelope import Envelope


def _envelope_row(r: asyncpg.Record) -> dict[str, Any]:
    """A stored row as the envelope it was, plus the topic it came from."""
    return {
        "event_id": str(r["event_id"]),
        "type": r["type"],
        "schema_version": r["schema_version"],
        "occurred_at": r["occurred_at"].isoformat(),
        "incident_key": r["incident_key"],
        "incident_id": str(r["incident_id"]) if r["incident_id"] else None,
        "causation_id": str(r["causation_id"]) if r["causation_id"] else None,
        "correlation_id": str(r["correlation_id"]) if r["correlation_id"] else None,
        "payload": json.loads(r["payload"]),
        "topic": r["topic"],
    }


class AuditStoreError(RuntimeError):
    """The audit database failed; the batch was not stored and its offsets not advanced."""


@dataclass(frozen=True)
class Record:
    """One consumed message with where it came from."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope


_INSERT = """
INSERT INTO audit_log (event_id, type, schema_version, occurred_at, incident_key, incident_id,
                       causation_id, correlation_id, topic, kafka_partition, kafka_offset, payload)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::uuid[],
                     $7::uuid[], $8::uuid[], $9::text[], $10::int[], $11::bigint[], $12::jsonb[])
ON CONFLICT (event_id) DO NOTHING
"""

_SAVE_OFFSET = """
INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset
"""

_TIMELINE = """
WITH own AS (SELECT * FROM audit_log WHERE incident_id = $1)
SELECT * FROM own
UNION
SELECT c.* FROM audit_log c WHERE c.event_id IN (SELECT causation_id FROM own WHERE causation_id IS NOT NULL)
ORDER BY occurred_at, seq
"""


class AuditStore:
    """Writes history and reads it back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write_batch(self, consumer: str, records: Sequence[Record], offsets: dict[tuple[str, int], int]) -> int:
        """Insert the rows (duplicates ignored) and the next offsets atomically; return rows inserted."""
        envs = [r.envelope for r in records]
        columns = (
            [e.event_id for e in envs],
            [e.type for e in envs],
            [e.schema_version for e in envs],
            [e.occurred_at for e in envs],
            [e.incident_key for e in envs],
            [e.incident_id for e in envs],
            [e.causation_id for e in envs],
            [e.correlation_id for e in envs],
            [r.topic for r in records],
            [r.partition for r in records],
            [r.offset for r in records],
            [json.dumps(e.payload) for e in envs],
        )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                status = await conn.execute(_INSERT, *columns) if records else "INSERT 0 0"
                await conn.executemany(_SAVE_OFFSET, [(consumer, t, p, o) for (t, p), o in offsets.items()])
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise AuditStoreError(f"audit batch not stored: {exc!r}") from exc
        return int(status.rsplit(" ", 1)[1])

    async def offsets(self, consumer: str) -> dict[tuple[str, int], int]:
        """Return the next offset to read per (topic, partition)."""
        try:
            rows = await self._pool.fetch(
                "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", consumer
            )
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise AuditStoreError(f"cannot read offsets: {exc!r}") from exc
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def timeline(self, incident_id: uuid.UUID) -> list[dict[str, Any]]:
        """Return every message of an incident, and the commands that caused them, in order."""
        try:
            rows = await self._pool.fetch(_TIMELINE, incident_id)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise AuditStoreError(f"cannot read timeline: {exc!r}") from exc
        return [{**_envelope_row(r), "seq": r["seq"], "recorded_at": r["recorded_at"].isoformat()} for r in rows]

    async def export(self, batch: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Yield every row in ingestion order as an envelope plus topic, streamed by a cursor."""
        async with self._pool.acquire() as conn, conn.transaction():
            async for r in conn.cursor("SELECT * FROM audit_log ORDER BY seq", prefetch=batch):
                yield _envelope_row(r)

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            return bool(await self._pool.fetchval("SELECT 1") == 1)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            return False
