"""Versioned schema migrations: numbered SQL files applied once each, in order, under a lock."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources

import asyncpg

from services.audit.chain import GENESIS, chain_of, row_hash
from services.audit.rows import service_of, stored_to_hashed, teams_of

# Any fixed number: serializes migrators started at the same time by several audit workers.
_LOCK_ID = 7_301_001


async def _chain_existing_rows(conn: asyncpg.Connection) -> None:
    """Version 2: give rows stored before the hash chain their search fields and chain links."""
    heads: dict[str, tuple[int, str]] = {}
    updates = []
    for r in await conn.fetch("SELECT * FROM audit_log WHERE hash IS NULL ORDER BY seq"):
        payload = json.loads(r["payload"])
        chain = chain_of(r["topic"], r["kafka_partition"])
        seq, prev = heads.get(chain, (0, GENESIS))
        priority, actor = payload.get("priority"), payload.get("actor")
        row = {
            **dict(r),
            "service": service_of(r["incident_key"]),
            "priority": priority if isinstance(priority, str) else None,
            "actor": actor if isinstance(actor, str) else None,
            "teams": teams_of(payload),
            "chain": chain,
            "chain_seq": seq + 1,
            "prev_hash": prev,
            "hash": None,
        }
        digest = row_hash(stored_to_hashed(row))
        heads[chain] = (seq + 1, digest)
        updates.append(
            (r["seq"], row["service"], row["priority"], row["actor"], row["teams"], chain, seq + 1, prev, digest)
        )
    await conn.executemany(
        "UPDATE audit_log SET service = $2, priority = $3, actor = $4, teams = $5, chain = $6, chain_seq = $7,"
        " prev_hash = $8, hash = $9 WHERE seq = $1",
        updates,
    )
    await conn.executemany(
        "INSERT INTO audit_chain_heads (chain, chain_seq, hash) VALUES ($1, $2, $3)",
        [(chain, seq, digest) for chain, (seq, digest) in heads.items()],
    )


# Steps in Python that run right after the SQL file of the same version, in its transaction.
_AFTER: dict[int, Callable[[asyncpg.Connection], Awaitable[None]]] = {2: _chain_existing_rows}


def migration_files() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) of every bundled migration, in order."""
    folder = resources.files("services.audit") / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not applied yet; return their names."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                if version in _AFTER:
                    await _AFTER[version](conn)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now
