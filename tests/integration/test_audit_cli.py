"""`escalation audit verify | export | report` and `escalation access token` as a user types them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from services.audit.migrate import migrate
from services.audit.signing import load_private_key, make_checkpoint, new_private_key_text, public_key_text
from services.audit.store import AuditStore, Record
from services.cli import app
from shared import events as ev
from shared.auth import token_hash
from shared.envelope import new_envelope

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
KEY = new_private_key_text()


async def _seed(url: str) -> str:
    """A database with one acknowledged incident and a signed checkpoint."""
    admin = await asyncpg.connect(url)
    name = f"cli_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{url.rsplit('/', 1)[0]}/{name}"
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    store = AuditStore(pool)
    trig = new_envelope(
        ev.TRIGGER, ev.Trigger(service="cli", dedup_key="k", summary="down"), incident_key="cli/k", occurred_at=T0
    )
    opened = new_envelope(
        ev.INCIDENT_OPENED,
        ev.IncidentOpened(
            service="cli",
            dedup_key="k",
            summary="down",
            severity=ev.Severity.ERROR,
            policy_id="p",
            policy_hash="h",
            priority="P2",
        ),
        incident_key="cli/k",
        occurred_at=T0,
        incident_id=trig.event_id,
        cause=trig,
    )
    acked = new_envelope(
        ev.INCIDENT_ACKNOWLEDGED,
        ev.IncidentAcknowledged(actor="carol"),
        incident_key="cli/k",
        occurred_at=T0 + timedelta(minutes=3),
        incident_id=trig.event_id,
    )
    await store.write_batch(
        "cli", [Record("escalations.events", 0, i, e) for i, e in enumerate([trig, opened, acked])], {}
    )
    key = load_private_key(KEY)
    await store.add_checkpoint(lambda heads, prev: make_checkpoint(key, heads, prev, datetime.now(UTC)))
    await pool.close()
    return url


@pytest.fixture(scope="module")
def seeded_url(database_url: str) -> str:
    """The seeded database's URL (the CLI runs its own event loop, so this fixture is sync)."""
    return asyncio.run(_seed(database_url))


def test_verify_export_and_offline_pack(seeded_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": seeded_url, "AUDIT_SIGNING_KEY": KEY}
    ok = runner.invoke(app, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "OK: 3 rows in 1 chains, 1 checkpoints" in ok.output
    pack = tmp_path / "pack.jsonl"
    exported = runner.invoke(app, ["audit", "export", str(pack), "--evidence"], env=env)
    assert exported.exit_code == 0, exported.output
    public = public_key_text(load_private_key(KEY).public_key())
    offline = runner.invoke(app, ["audit", "verify", "--pack", str(pack), "--public-key", public], env={})
    assert offline.exit_code == 0, offline.output
    lines = pack.read_text().splitlines()
    row = json.loads(lines[3])
    row["actor"] = "mallory"
    lines[3] = json.dumps(row)
    pack.write_text("\n".join(lines) + "\n")
    tampered = runner.invoke(app, ["audit", "verify", "--pack", str(pack), "--public-key", public], env={})
    assert tampered.exit_code == 1
    assert f"FAIL: chain escalations.events/0, row {row['chain_seq']}" in tampered.output
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("{}\n")
    unreadable = runner.invoke(app, ["audit", "verify", "--pack", str(garbage)], env={})
    assert unreadable.exit_code == 2
    assert "garbage.jsonl:1" in unreadable.output


def test_report_and_csv_export(seeded_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": seeded_url}
    since, until = (T0 - timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=1)).isoformat()
    result = runner.invoke(app, ["audit", "report", "--since", since, "--until", until, "--json"], env=env)
    assert result.exit_code == 0, result.output
    (line,) = json.loads(result.output)["lines"]
    assert (line["group"], line["incidents"], line["mtta_seconds"]) == ("cli", 1, 180.0)
    assert line["acknowledged_by"] == {"carol": 1}
    table = runner.invoke(app, ["audit", "report", "--by", "priority", "--since", since, "--until", until], env=env)
    assert table.exit_code == 0
    assert "P2" in table.output
    out = tmp_path / "audit.csv"
    assert runner.invoke(app, ["audit", "export", str(out), "--csv"], env=env).exit_code == 0
    assert out.read_text().splitlines()[0].startswith("seq,occurred_at,recorded_at,type")
    assert len(out.read_text().splitlines()) == 4


def test_access_token_prints_a_token_and_its_hash() -> None:
    result = CliRunner().invoke(app, ["access", "token", "jane", "--role", "auditor"])
    assert result.exit_code == 0
    token = result.output.split("): ", 1)[1].split()[0]
    assert f"token_sha256: {token_hash(token)}" in result.output
    assert "role: auditor" in result.output
    wrong = CliRunner().invoke(app, ["access", "token", "jane", "--role", "king"])
    assert wrong.exit_code == 2
