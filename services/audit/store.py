"""PostgreSQL adapter of the audit log: chained rows and consumer offsets written in one transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from services.audit.chain import chain_of
from services.audit.rows import COLUMNS, Record, link, stored_to_hashed
from services.audit.signing import Checkpoint

__all__ = ["CHANGES_CHANNEL", "EVERYTHING", "WRITER_ROLE", "AuditStore", "AuditStoreError", "Record", "SearchFilter"]

WRITER_ROLE = "escalation_audit_writer"
# InternalClientError: asyncpg's protocol state machine refusing an operation on a connection the
# server is tearing down ("cannot switch to state 12; another operation (2) is in progress").
_BROKEN = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError)
_DB_ERRORS = (asyncpg.PostgresError, *_BROKEN)
T = TypeVar("T")
_CHECKPOINT_LOCK = 7_301_002  # any fixed number: one checkpointer at a time across audit workers
# Each committed batch NOTIFYs the incidents it touched on this channel (the console's live list).
CHANGES_CHANNEL = "audit_incidents_changed"
# The payload when a batch touched too many incidents for one NOTIFY (under 8,000 bytes): all may have.
EVERYTHING = "*"
_MAX_IDS_PER_NOTIFY = 200


def changes_payload(incident_ids: set[uuid.UUID]) -> str:
    """The NOTIFY payload announcing a batch that touched these incidents."""
    if len(incident_ids) > _MAX_IDS_PER_NOTIFY:
        return EVERYTHING
    return ",".join(sorted(str(i) for i in incident_ids))


class AuditStoreError(RuntimeError):
    """The audit database failed; the batch was not stored and its offsets not advanced."""


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


def _entry(r: asyncpg.Record) -> dict[str, Any]:
    """A row as auditors read it: the envelope, where and when it was recorded, its chain link."""
    return {
        **_envelope_row(r),
        "seq": r["seq"],
        "recorded_at": r["recorded_at"].isoformat(),
        "actor": r["actor"],
        "priority": r["priority"],
        "service": r["service"],
        "teams": list(r["teams"]),
        "chain": r["chain"],
        "chain_seq": r["chain_seq"],
        "hash": r["hash"],
    }


@dataclass(frozen=True)
class SearchFilter:
    """What an auditor searches by; every field optional, all given ones must hold."""

    service: str | None = None
    team: str | None = None
    priority: str | None = None
    actor: str | None = None
    type: str | None = None
    incident_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, first: int = 1) -> tuple[str, list[Any]]:
        """SQL conditions and their arguments, numbered from `$first`."""
        conditions: list[str] = []
        args: list[Any] = []
        for column, value, op in (
            ("service", self.service, "="),
            ("priority", self.priority, "="),
            ("actor", self.actor, "="),
            ("type", self.type, "="),
            ("incident_id", self.incident_id, "="),
            ("occurred_at", self.since, ">="),
            ("occurred_at", self.until, "<"),
        ):
            if value is not None:
                args.append(value)
                conditions.append(f"{column} {op} ${first + len(args) - 1}")
        if self.team is not None:
            args.append(self.team)
            conditions.append(f"${first + len(args) - 1} = ANY(teams)")
        return (" AND ".join(conditions) or "TRUE"), args


_TIMELINE = """
SELECT * FROM audit_log WHERE seq IN (
    SELECT seq FROM audit_log WHERE incident_id = $1
    UNION
    SELECT c.seq FROM audit_log c
    WHERE c.event_id IN (SELECT causation_id FROM audit_log WHERE incident_id = $1 AND causation_id IS NOT NULL)
)
ORDER BY occurred_at, seq
"""


async def use_writer_role(conn: asyncpg.Connection) -> None:
    """Pool connection setup: work as the append-only writer role when this login may."""
    member = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role(current_user, $1, 'MEMBER')",
        WRITER_ROLE,
    )
    if member:
        await conn.execute(f"SET ROLE {WRITER_ROLE}")


class AuditStore:
    """Writes chained history and reads it back."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection that is dropped, not handed back, when an error leaves it unusable.

        When PostgreSQL goes away in the middle of an operation, asyncpg can mark the connection
        closed without releasing its pool slot; `Pool.release` then returns early and the slot stays
        checked out for ever (a smaller pool each restart, and `Pool.close` waiting on it). Terminating
        the connection runs asyncpg's own cleanup, which frees the slot; the pool opens a new one.
        """
        async with self._pool.acquire() as conn:
            try:
                yield conn
            except _DB_ERRORS as exc:
                # InterfaceError here: asyncpg already released the connection on its own.
                with suppress(asyncpg.InterfaceError):
                    if isinstance(exc, _BROKEN) or conn.is_closed():
                        conn.terminate()
                raise

    async def _guard(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except _DB_ERRORS as exc:
            raise AuditStoreError(f"{what}: {exc!r}") from exc

    async def _fetch(self, what: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def work() -> list[asyncpg.Record]:
            async with self._connection() as conn:
                return list(await conn.fetch(sql, *args))

        return await self._guard(what, work)

    # --- writing ------------------------------------------------------------------------------

    async def write_batch(self, consumer: str, records: Sequence[Record], offsets: dict[tuple[str, int], int]) -> int:
        """Chain and insert the new rows and move the offsets, atomically; return rows inserted.

        Rows below a partition's stored offset (a redelivery, or a worker that lost the partition)
        and rows whose event_id is already stored (a producer's retry) are left out.
        """
        try:
            async with self._connection() as conn, conn.transaction():
                return await self._write(conn, consumer, records, offsets)
        except _DB_ERRORS as exc:
            raise AuditStoreError(f"audit batch not stored: {exc!r}") from exc

    async def _write(
        self,
        conn: asyncpg.Connection,
        consumer: str,
        records: Sequence[Record],
        offsets: dict[tuple[str, int], int],
    ) -> int:
        partitions = sorted({(r.topic, r.partition) for r in records} | set(offsets))
        stored = {
            (r["topic"], r["partition"]): r["next_offset"]
            for r in await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_offsets"
                " WHERE consumer = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))"
                " ORDER BY topic, partition FOR UPDATE",  # locked in one order by every writer
                consumer,
                [t for t, _ in partitions],
                [p for _, p in partitions],
            )
        }
        fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
        known = {
            row["event_id"]
            for row in await conn.fetch(
                "SELECT event_id FROM audit_log WHERE event_id = ANY($1::uuid[])", [r.envelope.event_id for r in fresh]
            )
        }
        new: list[Record] = []
        for r in fresh:
            if r.envelope.event_id not in known:
                known.add(r.envelope.event_id)
                new.append(r)
        if new:
            chains = sorted({chain_of(r.topic, r.partition) for r in new})
            heads = {
                row["chain"]: (row["chain_seq"], row["hash"])
                for row in await conn.fetch(
                    "SELECT chain, chain_seq, hash FROM audit_chain_heads WHERE chain = ANY($1) ORDER BY chain"
                    " FOR UPDATE",
                    chains,
                )
            }
            rows = link(new, heads, datetime.now(UTC))
            await conn.copy_records_to_table("audit_log", records=rows, columns=list(COLUMNS))
            await conn.execute(
                "INSERT INTO audit_chain_heads (chain, chain_seq, hash)"
                " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])"
                " ON CONFLICT (chain) DO UPDATE SET chain_seq = EXCLUDED.chain_seq, hash = EXCLUDED.hash",
                chains,
                [heads[c][0] for c in chains],
                [heads[c][1] for c in chains],
            )
            touched = {r.envelope.incident_id for r in new if r.envelope.incident_id is not None}
            if touched:  # delivered when (and only if) the transaction commits
                await conn.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, changes_payload(touched))
        moved = {tp: offsets[tp] for tp in sorted(offsets) if offsets[tp] > stored.get(tp, -1)}
        if moved:
            await conn.execute(
                "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset)"
                " SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])"
                " ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                consumer,
                [t for t, _ in moved],
                [p for _, p in moved],
                list(moved.values()),
            )
        return len(new)

    async def offsets(self, consumer: str) -> dict[tuple[str, int], int]:
        """Return the next offset to read per (topic, partition)."""
        rows = await self._fetch(
            "cannot read offsets",
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1",
            consumer,
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    # --- checkpoints --------------------------------------------------------------------------

    async def heads(self) -> dict[str, tuple[int, str]]:
        """The last row of every chain."""
        rows = await self._fetch("cannot read chain heads", "SELECT chain, chain_seq, hash FROM audit_chain_heads")
        return {r["chain"]: (r["chain_seq"], r["hash"]) for r in rows}

    async def checkpoints(self) -> list[Checkpoint]:
        """Every signed checkpoint, oldest first."""
        rows = await self._fetch("cannot read checkpoints", "SELECT body, signature FROM audit_checkpoints ORDER BY id")
        return [Checkpoint(r["body"].encode(), r["signature"]) for r in rows]

    async def add_checkpoint(self, make: Callable[[dict[str, tuple[int, str]], Checkpoint | None], Checkpoint]) -> None:
        """Sign the heads as they are now, linked to the last checkpoint, under a lock on both."""

        async def work() -> None:
            async with self._connection() as conn, conn.transaction():
                # Serializes checkpointers (several audit workers) so each links to the one before.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _CHECKPOINT_LOCK)
                last = await conn.fetchrow("SELECT body, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
                prev = Checkpoint(last["body"].encode(), last["signature"]) if last else None
                heads = {
                    r["chain"]: (r["chain_seq"], r["hash"])
                    for r in await conn.fetch("SELECT chain, chain_seq, hash FROM audit_chain_heads")
                }
                if prev is not None and {c: list(h) for c, h in heads.items()} == {
                    c: [v["seq"], v["hash"]] for c, v in prev.fields["chains"].items()
                }:
                    return  # nothing new since the last checkpoint
                cp = make(heads, prev)
                await conn.execute(
                    "INSERT INTO audit_checkpoints (created_at, body, signature) VALUES ($1, $2, $3)",
                    datetime.fromisoformat(cp.fields["created_at"].replace("Z", "+00:00")),
                    cp.body.decode(),
                    cp.signature,
                )

        await self._guard("cannot write checkpoint", work)

    # --- reading ------------------------------------------------------------------------------

    async def timeline(self, incident_id: uuid.UUID) -> list[dict[str, Any]]:
        """Return every message of an incident, and the commands that caused them, in order."""
        rows = await self._fetch("cannot read timeline", _TIMELINE, incident_id)
        return [_entry(r) for r in rows]

    async def search(self, query: SearchFilter, after: int | None, limit: int) -> list[dict[str, Any]]:
        """Rows matching the filter in ingestion order, `limit` at most, after the row `after` (keyset)."""
        where, args = query.where(first=3)
        sql = f"SELECT * FROM audit_log WHERE seq > $1 AND {where} ORDER BY seq LIMIT $2"  # noqa: S608 - placeholders only
        rows = await self._fetch("cannot search", sql, after or 0, limit, *args)
        return [_entry(r) for r in rows]

    async def export(self, batch: int = 1000, query: SearchFilter | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield matching rows in ingestion order as envelope plus topic and chain fields (a cursor)."""
        where, args = (query or SearchFilter()).where()
        sql = f"SELECT * FROM audit_log WHERE {where} ORDER BY seq"  # noqa: S608 - placeholders only
        async with self._connection() as conn, conn.transaction():
            async for r in conn.cursor(sql, *args, prefetch=batch):
                yield _entry(r)

    async def evidence(self, batch: int = 5000) -> AsyncIterator[dict[str, Any]]:
        """One consistent snapshot for `verify` and evidence packs, as tagged items in this order:
        each checkpoint (`kind: checkpoint`), the chain heads (`kind: heads`), then every row in its
        hashed form (`kind: row`), chain by chain in chain order."""
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            for r in await conn.fetch("SELECT body, signature FROM audit_checkpoints ORDER BY id"):
                yield {"kind": "checkpoint", "body": r["body"], "signature": r["signature"]}
            heads = await conn.fetch("SELECT chain, chain_seq, hash FROM audit_chain_heads ORDER BY chain")
            yield {"kind": "heads", "chains": {r["chain"]: {"seq": r["chain_seq"], "hash": r["hash"]} for r in heads}}
            async for r in conn.cursor("SELECT * FROM audit_log ORDER BY chain, chain_seq", prefetch=batch):
                yield {"kind": "row", **stored_to_hashed(r)}

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            async with self._connection() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except _DB_ERRORS:
            return False
