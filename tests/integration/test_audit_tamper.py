"""Tamper evidence against the real PostgreSQL: append-only for everyone, and `verify` names the first
bad row after a superuser modifies, deletes, inserts or reorders rows behind the triggers' back."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.chain import row_hash
from services.audit.rows import stored_to_hashed
from services.audit.signing import make_checkpoint
from services.audit.store import AuditStore, Record, use_writer_role
from services.audit.verify import PackError, Report, pack_lines, verify_items, verify_pack
from shared import events as ev
from shared.envelope import Envelope, new_envelope

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TOPIC = "incidents.commands"
KEY = Ed25519PrivateKey.generate()


@pytest.fixture
async def superuser(scratch_database: str) -> AsyncIterator[asyncpg.Connection]:
    """The migrated database as its superuser, with triggers off: what an attacker with root does."""
    conn = await asyncpg.connect(scratch_database)
    await conn.execute("SET session_replication_role = replica")
    yield conn
    await conn.close()


@pytest.fixture
async def store(scratch_database: str, superuser: asyncpg.Connection) -> AsyncIterator[AuditStore]:
    """The service's store (its pool works as the writer role) with 2 chains of 6 rows each."""
    pool = await asyncpg.create_pool(scratch_database, min_size=1, max_size=2, init=use_writer_role)
    store = AuditStore(pool)
    for partition in (0, 1):
        records = [Record(TOPIC, partition, i, _trigger(f"p{partition}-{i}", i)) for i in range(6)]
        # Two batches per chain: the second must link to the head the first left.
        await store.write_batch("audit", records[:3], {(TOPIC, partition): 3})
        await store.write_batch("audit", records[3:], {(TOPIC, partition): 6})
    yield store
    await pool.close()


def _trigger(key: str, minute: int) -> Envelope:
    payload = ev.Trigger(service="db", dedup_key=key, summary=f"disk full {key}", custom_details={"load": 0.93})
    return new_envelope(ev.TRIGGER, payload, incident_key=f"db/{key}", occurred_at=T0 + timedelta(minutes=minute))


async def _checkpoint(store: AuditStore) -> None:
    await store.add_checkpoint(lambda heads, prev: make_checkpoint(KEY, heads, prev, datetime.now(UTC)))


async def _verify(store: AuditStore) -> Report:
    return await verify_items(store.evidence(), KEY.public_key())


async def _row(conn: asyncpg.Connection, chain_seq: int, partition: int = 0) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM audit_log WHERE chain = $1 AND chain_seq = $2", f"{TOPIC}/{partition}", chain_seq
    )
    assert row is not None
    return row


async def test_an_untouched_history_verifies(store: AuditStore) -> None:
    await _checkpoint(store)
    report = await _verify(store)
    assert report.ok, report.text()
    assert (report.rows, report.chains, report.checkpoints) == (12, 2, 1)


async def test_the_service_role_can_only_append(store: AuditStore, scratch_database: str) -> None:
    pool = await asyncpg.create_pool(scratch_database, min_size=1, max_size=1, init=use_writer_role)
    try:
        assert await pool.fetchval("SELECT current_user") == "escalation_audit_writer"
        for statement in ("UPDATE audit_log SET type = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(statement)
    finally:
        await pool.close()


async def test_triggers_stop_even_a_superuser_who_leaves_them_on(store: AuditStore, scratch_database: str) -> None:
    await _checkpoint(store)
    conn = await asyncpg.connect(scratch_database)
    try:
        for statement in (
            "UPDATE audit_log SET type = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "DELETE FROM audit_checkpoints",
            "TRUNCATE audit_checkpoints",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()
    assert (await _verify(store)).ok


async def test_a_modified_row_is_named(store: AuditStore, superuser: asyncpg.Connection) -> None:
    target = await _row(superuser, 4)
    await superuser.execute(
        """UPDATE audit_log SET payload = '{"summary":"nothing happened"}' WHERE seq = $1""", target["seq"]
    )
    report = await _verify(store)
    assert not report.ok
    assert report.problems[0].startswith(f"chain {TOPIC}/0, row 4 (event {target['event_id']})")
    assert "changed" in report.problems[0]
    assert len(report.problems) == 1  # the other chain is intact


async def test_a_deleted_row_is_named_where_the_gap_shows(store: AuditStore, superuser: asyncpg.Connection) -> None:
    await superuser.execute("DELETE FROM audit_log WHERE seq = $1", (await _row(superuser, 3))["seq"])
    after = await _row(superuser, 4)
    report = await _verify(store)
    assert report.problems[0].startswith(f"chain {TOPIC}/0, row 4 (event {after['event_id']})")
    assert "expected row 3" in report.problems[0]


async def test_a_deleted_last_row_is_caught_by_the_chain_head(store: AuditStore, superuser: asyncpg.Connection) -> None:
    await superuser.execute("DELETE FROM audit_log WHERE seq = $1", (await _row(superuser, 6, partition=1))["seq"])
    report = await _verify(store)
    assert report.problems == [
        f"chain {TOPIC}/1: ends at row 5 but its recorded head is row 6 (rows were removed from or added to its end)"
    ]


async def test_an_inserted_row_is_named(store: AuditStore, superuser: asyncpg.Connection) -> None:
    # The forger makes room after row 2 and inserts a row that links correctly to row 2.
    await superuser.execute(
        "UPDATE audit_log SET chain_seq = -chain_seq WHERE chain = $1 AND chain_seq > 2", f"{TOPIC}/0"
    )
    await superuser.execute(
        "UPDATE audit_log SET chain_seq = 1 - chain_seq WHERE chain = $1 AND chain_seq < 0", f"{TOPIC}/0"
    )
    two = await _row(superuser, 2)
    forged = dict(two)
    forged.update(
        seq=10_000, event_id=uuid.uuid4(), chain_seq=3, prev_hash=two["hash"], payload='{"summary":"all fine"}'
    )
    forged["hash"] = row_hash(stored_to_hashed(forged))
    columns = [c for c in forged if c != "seq"]
    await superuser.execute(
        f"INSERT INTO audit_log ({', '.join(columns)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
        *[forged[c] for c in columns],
    )
    report = await _verify(store)
    old_three = await _row(superuser, 4)  # the genuine row that followed row 2
    assert report.problems[0].startswith(f"chain {TOPIC}/0, row 4 (event {old_three['event_id']})")
    assert "prev_hash" in report.problems[0]


async def test_reordered_rows_are_named(store: AuditStore, superuser: asyncpg.Connection) -> None:
    three, four = await _row(superuser, 3), await _row(superuser, 4)
    await superuser.execute("UPDATE audit_log SET chain_seq = -1 WHERE seq = $1", three["seq"])
    await superuser.execute("UPDATE audit_log SET chain_seq = 3 WHERE seq = $1", four["seq"])
    await superuser.execute("UPDATE audit_log SET chain_seq = 4 WHERE seq = $1", three["seq"])
    report = await _verify(store)
    assert report.problems[0].startswith(f"chain {TOPIC}/0, row 3 (event {four['event_id']})")


async def test_a_recomputed_chain_passes_the_hashes_but_not_the_signed_checkpoint(
    store: AuditStore, superuser: asyncpg.Connection
) -> None:
    await _checkpoint(store)
    # The careful forger changes row 2 and recomputes every later hash and the head.
    prev = (await _row(superuser, 1))["hash"]
    for seq in range(2, 7):
        row = dict(await _row(superuser, seq))
        row["prev_hash"] = prev
        if seq == 2:
            row["payload"] = '{"summary":"nothing happened"}'
        row["hash"] = prev = row_hash(stored_to_hashed(row))
        await superuser.execute(
            "UPDATE audit_log SET payload = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
            row["seq"],
            row["payload"],
            row["prev_hash"],
            row["hash"],
        )
    await superuser.execute("UPDATE audit_chain_heads SET hash = $1 WHERE chain = $2", prev, f"{TOPIC}/0")
    report = await _verify(store)
    assert report.problems == [
        f"checkpoint 1 ({json.loads((await store.checkpoints())[0].body)['created_at']}): chain {TOPIC}/0 row 6 "
        "hash differs from the signed one (rows were rewritten)"
    ]


async def test_a_forged_checkpoint_signature_fails(store: AuditStore, superuser: asyncpg.Connection) -> None:
    await _checkpoint(store)
    await superuser.execute("UPDATE audit_checkpoints SET signature = $1", "AAAA" + "A" * 84)
    report = await _verify(store)
    assert len(report.problems) == 1
    assert "signature does not verify" in report.problems[0]


async def test_an_evidence_pack_verifies_offline_and_names_a_changed_line(store: AuditStore, tmp_path: Path) -> None:
    await _checkpoint(store)
    pack = tmp_path / "evidence.jsonl"
    with pack.open("wb") as out:
        async for line in pack_lines(store.evidence(), KEY.public_key(), "2026-11-27T10:00:00Z"):
            out.write(line)
    assert verify_pack(pack, KEY.public_key()).ok
    lines = pack.read_text().splitlines()
    row = json.loads(lines[5])
    row["payload"]["summary"] = "edited"
    lines[5] = json.dumps(row)
    pack.write_text("\n".join(lines) + "\n")
    report = verify_pack(pack, None)  # the key from the pack itself, with a note saying so
    assert report.problems[0].startswith(f"chain {row['chain']}, row {row['chain_seq']} (event {row['event_id']})")
    assert any("taken from the pack" in n for n in report.notes)
    pack.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(PackError, match=r"evidence.jsonl:2: not JSON"):
        verify_pack(pack, None)
