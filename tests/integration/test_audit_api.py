"""The auditor API in-process against the real PostgreSQL and Kafka: tokens and roles, search with
pages, CSV and JSONL exports, evidence pack, verification and reports."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.audit.app import create_app
from services.audit.csv_export import CSV_COLUMNS
from services.audit.migrate import migrate
from services.audit.signing import new_private_key_text
from services.audit.store import AuditStore, Record
from services.audit.verify import verify_pack
from shared import events as ev
from shared.auth import token_hash
from shared.envelope import Envelope, new_envelope
from shared.settings import AuditSettings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
AUDITOR, RESPONDER = "auditor-secret-token", "responder-secret-token"


@pytest.fixture(scope="module")
def service() -> str:
    """A service name of this module's own, so rows other tests send through Kafka do not match."""
    return f"api-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def seeded(database_url: str, service: str) -> list[Envelope]:
    """Two incidents of `service`: one acknowledged by alice and resolved, one breaching its SLA."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn)
    store = AuditStore(pool)
    history: list[Envelope] = []
    for n, minutes_to_ack in ((1, 4), (2, None)):
        trig = new_envelope(
            ev.TRIGGER,
            ev.Trigger(service=service, dedup_key=f"k{n}", summary="checkout down", severity=ev.Severity.CRITICAL),
            incident_key=f"{service}/k{n}",
            occurred_at=T0,
        )
        opened = new_envelope(
            ev.INCIDENT_OPENED,
            ev.IncidentOpened(
                service=service,
                dedup_key=f"k{n}",
                summary="checkout down",
                severity=ev.Severity.CRITICAL,
                policy_id="p",
                policy_hash="h",
                priority="P1",
            ),
            incident_key=trig.incident_key,
            occurred_at=T0,
            incident_id=trig.event_id,
            cause=trig,
        )
        step = new_envelope(
            ev.ESCALATION_STEP_REACHED,
            ev.EscalationStepReached(
                step_id=uuid.uuid4(),
                level=1,
                cycle=0,
                targets=[ev.Target(type="webhook", url="http://x", name="frontline")],
                service=service,
                summary="checkout down",
                severity=ev.Severity.CRITICAL,
                priority="P1",
            ),
            incident_key=trig.incident_key,
            occurred_at=T0,
            incident_id=trig.event_id,
            cause=opened,
        )
        history += [trig, opened, step]
        if minutes_to_ack is not None:
            at = T0 + timedelta(minutes=minutes_to_ack)
            history.append(
                new_envelope(
                    ev.INCIDENT_ACKNOWLEDGED,
                    ev.IncidentAcknowledged(actor="alice"),
                    incident_key=trig.incident_key,
                    occurred_at=at,
                    incident_id=trig.event_id,
                )
            )
        else:
            history.append(
                new_envelope(
                    ev.SLA_BREACHED,
                    ev.SlaEvent(clock="acknowledge", fraction=1.0, target_seconds=300, priority="P1"),
                    incident_key=trig.incident_key,
                    occurred_at=T0 + timedelta(minutes=5),
                    incident_id=trig.event_id,
                )
            )
    records = [Record("escalations.events", 7, i, env) for i, env in enumerate(history)]
    await store.write_batch("seed", records, {})
    await pool.close()
    return history


@pytest.fixture(scope="module")
async def client(
    seeded: list[Envelope], database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    config = tmp_path_factory.mktemp("access")
    (config / "access.yaml").write_text(
        "access:\n"
        f"  jane:\n    role: auditor\n    token_sha256: {token_hash(AUDITOR)}\n"
        f"  bob:\n    role: responder\n    token_sha256: {token_hash(RESPONDER)}\n"
    )
    settings = AuditSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        escalation_config_dir=Path(config),
        audit_signing_key=new_private_key_text(),
        audit_consumer_group=f"it-audit-api-{uuid.uuid4().hex[:8]}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://audit", headers={"Authorization": f"Bearer {AUDITOR}"}
        ) as c:
            yield c


async def test_tokens_and_roles(client: httpx.AsyncClient, seeded: list[Envelope]) -> None:
    url = f"/v1/incidents/{seeded[0].event_id}/timeline"
    missing = await client.get(url, headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await client.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
    wrong_role = await client.get(url, headers={"Authorization": f"Bearer {RESPONDER}"})
    assert wrong_role.status_code == 403
    assert "responder" in wrong_role.json()["title"]
    ok = await client.get(url)
    assert ok.status_code == 200
    assert [e["type"] for e in ok.json()["entries"]] == [
        "incident.trigger",
        "incident.opened",
        "escalation.step_reached",
        "incident.acknowledged",
    ]
    assert ok.json()["entries"][-1]["actor"] == "alice"


async def test_search_filters_and_pages(client: httpx.AsyncClient, service: str) -> None:
    seen: list[dict[str, object]] = []
    after = None
    while True:
        params: dict[str, str | int] = {"service": service, "limit": 3}
        if after is not None:
            params["after"] = after
        page = (await client.get("/v1/events", params=params)).json()
        seen += page["items"]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == 8
    assert len({e["event_id"] for e in seen}) == 8
    by_actor = (await client.get("/v1/events", params={"service": service, "actor": "alice"})).json()["items"]
    assert [e["type"] for e in by_actor] == ["incident.acknowledged"]
    by_team = (await client.get("/v1/events", params={"service": service, "team": "frontline"})).json()["items"]
    assert {e["type"] for e in by_team} == {"escalation.step_reached"}
    in_range = await client.get(
        "/v1/events",
        params={"service": service, "since": (T0 + timedelta(minutes=1)).isoformat(), "type": "sla.breached"},
    )
    assert len(in_range.json()["items"]) == 1
    bad = await client.get("/v1/events", params={"priority": "urgent"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "priority"


async def test_exports_stream_jsonl_and_csv(client: httpx.AsyncClient, service: str) -> None:
    jsonl = await client.get("/v1/export.jsonl", params={"service": service})
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(rows) == 8
    assert all(len(r["hash"]) == 64 for r in rows)
    text = (await client.get("/v1/export.csv", params={"service": service})).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0]) == list(CSV_COLUMNS)
    assert [r["event_id"] for r in table] == [r["event_id"] for r in rows]
    assert json.loads(table[0]["payload"])["summary"] == "checkout down"


async def test_verify_and_evidence_pack(client: httpx.AsyncClient, tmp_path: Path) -> None:
    report = (await client.get("/v1/verify")).json()
    assert report["ok"], report
    assert report["rows"] >= 8
    pack = tmp_path / "pack.jsonl"
    pack.write_bytes((await client.get("/v1/evidence.jsonl")).content)
    offline = verify_pack(pack, None)
    assert offline.ok, offline.text()
    assert offline.rows >= report["rows"]  # the ingestor may have stored more since (other tests' traffic)


async def test_reports_by_service_and_team(client: httpx.AsyncClient, service: str) -> None:
    params = {"since": (T0 - timedelta(hours=1)).isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}
    body = (await client.get("/v1/reports", params={**params, "by": "service"})).json()
    (line,) = [x for x in body["lines"] if x["group"] == service]
    assert line["incidents"] == 2
    assert line["acknowledged"] == 1
    assert line["mtta_seconds"] == 240.0
    assert line["escalations_by_level"] == {"1": 2}
    assert line["sla_breaches"] == 1
    assert line["sla_compliance"] == 0.5
    assert line["acknowledged_by"] == {"alice": 1}
    teams = (await client.get("/v1/reports", params={**params, "by": "team"})).json()["lines"]
    assert any(x["group"] == "frontline" and x["incidents"] >= 2 for x in teams)
    backwards = await client.get("/v1/reports", params={"since": params["until"], "until": params["since"]})
    assert backwards.status_code == 422
