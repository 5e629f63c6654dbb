"""The console's JSON API in a real uvicorn server against the real PostgreSQL and Kafka: the incident
read model and its filters, clocks, the live stream fed by the audit writer's NOTIFY, reports over
time, problems for bad input, roles, and an unreachable intake."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from services.audit.app import create_app
from services.audit.migrate import migrate
from services.audit.store import AuditStore, Record
from shared import events as ev
from shared.auth import token_hash
from shared.envelope import Envelope, new_envelope
from shared.settings import AuditSettings
from tests.support import free_port

pytestmark = pytest.mark.integration

AUDITOR, RESPONDER = "console-auditor-token", "console-responder-token"
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(minutes=5)
COMMANDS = {t for t, _ in ev.ACTIONS.values()}


def _policy(service: str) -> str:
    return f"""
services:
  {service}: {{escalation_policy: console-it}}
policies:
  console-it:
    levels:
      - {{name: frontline, delay: 0s, targets: [{{type: webhook, name: frontline, url: "http://127.0.0.1:9/f"}}]}}
      - {{name: infrastructure, delay: 1h, targets: [{{type: webhook, name: infrastructure, url: "http://127.0.0.1:9/i"}}]}}
    sla:
      P1: {{acknowledge: 15m, resolve: 4h}}
access:
  ann: {{role: auditor, token_sha256: {token_hash(AUDITOR)}}}
  rob: {{role: responder, token_sha256: {token_hash(RESPONDER)}}}
"""


class History:
    """Writes an incident's history as the services would have, through the audit store."""

    def __init__(self, store: AuditStore, service: str) -> None:
        self.store, self.service, self.offset = store, service, 0

    async def write(self, *envelopes: Envelope) -> None:
        """Store envelopes: commands on the commands topic, the rest on the events topic."""
        records = []
        for env in envelopes:
            topic = "incidents.commands" if env.type in COMMANDS else "escalations.events"
            records.append(Record(topic, 0, self.offset, env))
            self.offset += 1
        await self.store.write_batch("console-it-seed", records, {})

    async def open(self, dedup: str, priority: str = "P1", at: datetime = T0) -> Envelope:
        """A trigger, its opening and level 1 reached; returns the trigger (its id is the incident's)."""
        key = f"{self.service}/{dedup}"
        trig = new_envelope(
            ev.TRIGGER,
            ev.Trigger(service=self.service, dedup_key=dedup, summary=f"{dedup} down", severity=ev.Severity.CRITICAL),
            incident_key=key,
            occurred_at=at,
        )
        opened = new_envelope(
            ev.INCIDENT_OPENED,
            ev.IncidentOpened(
                service=self.service,
                dedup_key=dedup,
                summary=f"{dedup} down",
                severity=ev.Severity.CRITICAL,
                policy_id="console-it",
                policy_hash="h",
                priority=priority,
            ),
            incident_key=key,
            occurred_at=at,
            incident_id=trig.event_id,
            cause=trig,
        )
        step = new_envelope(
            ev.ESCALATION_STEP_REACHED,
            ev.EscalationStepReached(
                step_id=uuid.uuid4(),
                level=1,
                cycle=0,
                level_name="frontline",
                targets=[ev.Target(type="webhook", url="http://127.0.0.1:9/f", name="frontline")],
                service=self.service,
                summary=f"{dedup} down",
                severity=ev.Severity.CRITICAL,
                priority=priority,
            ),
            incident_key=key,
            occurred_at=at,
            incident_id=trig.event_id,
            cause=opened,
        )
        await self.write(trig, opened, step)
        return trig

    async def acknowledge(self, trig: Envelope, actor: str, at: datetime) -> None:
        """The acknowledge command and the escalator's acknowledgement."""
        command = new_envelope(
            ev.ACKNOWLEDGE,
            ev.Acknowledge(service=self.service, dedup_key=trig.incident_key.split("/", 1)[1], actor=actor),
            incident_key=trig.incident_key,
            occurred_at=at,
        )
        acked = new_envelope(
            ev.INCIDENT_ACKNOWLEDGED,
            ev.IncidentAcknowledged(actor=actor),
            incident_key=trig.incident_key,
            occurred_at=at,
            incident_id=trig.event_id,
            cause=command,
        )
        await self.write(command, acked)

    async def resolve(self, trig: Envelope, at: datetime) -> None:
        """The escalator's resolution."""
        done = new_envelope(
            ev.INCIDENT_RESOLVED,
            ev.IncidentResolved(actor="carol"),
            incident_key=trig.incident_key,
            occurred_at=at,
            incident_id=trig.event_id,
        )
        await self.write(done)


@pytest.fixture(scope="module")
def service() -> str:
    """This module's own service: rows other tests write do not match its filters."""
    return f"console-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def history(database_url: str, service: str) -> AsyncIterator[History]:
    """A writer of history into the session's database."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield History(AuditStore(pool), service)
    await pool.close()


@pytest.fixture(scope="module")
async def seeded(history: History) -> dict[str, Envelope]:
    """Three incidents: `paged` triggered at level 1, `acked` acknowledged by alice, `low` a P3; and two
    opened 20 days ago: `stale` still open, `done` resolved."""
    stale = await history.open("stale", at=T0 - timedelta(days=20))
    done = await history.open("done", at=T0 - timedelta(days=20))
    await history.resolve(done, T0 - timedelta(days=20) + timedelta(hours=1))
    paged = await history.open("paged")
    acked = await history.open("acked")
    await history.acknowledge(acked, "alice", T0 + timedelta(minutes=2))
    low = await history.open("low", priority="P3")
    return {"paged": paged, "acked": acked, "low": low, "stale": stale, "done": done}


@pytest.fixture(scope="module")
async def base_url(
    seeded: dict[str, Envelope],
    service: str,
    database_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """The audit service (with the console) served by uvicorn on a free port; the intake unreachable."""
    config = tmp_path_factory.mktemp("console-config")
    (config / "console.yaml").write_text(_policy(service))
    settings = AuditSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        escalation_config_dir=Path(config),
        audit_consumer_group=f"it-console-{uuid.uuid4().hex[:8]}",
        # No checkpoints: the session's database is shared, and another module's verify pins its own key.
        audit_signing_key=None,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONSOLE_INTAKE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
        app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the audit service did not start"
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the auditor's token."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {AUDITOR}"}, timeout=20) as c:
        yield c


async def _ids(http: httpx.AsyncClient, service: str, **query: str) -> set[str]:
    answer = await http.get("/v1/console/incidents", params={"service": service, **query})
    assert answer.status_code == 200, answer.text
    return {i["incident_id"] for i in answer.json()["items"]}


async def test_the_list_folds_each_incident_and_filters_it(
    http: httpx.AsyncClient, service: str, seeded: dict[str, Envelope]
) -> None:
    paged, acked, low, stale = (str(seeded[k].event_id) for k in ("paged", "acked", "low", "stale"))
    answer = await http.get("/v1/console/incidents", params={"service": service})
    items = {i["incident_id"]: i for i in answer.json()["items"]}
    assert set(items) == {paged, acked, low, stale}  # older than 7 days: only the one still open
    assert [i["incident_id"] for i in answer.json()["items"]] == [low, acked, paged, stale]  # newest first
    assert (items[stale]["state"], items[stale]["level"]) == ("triggered", 1)
    month = (
        await http.get(
            "/v1/console/incidents", params={"service": service, "since": (T0 - timedelta(days=30)).isoformat()}
        )
    ).json()
    assert str(seeded["done"].event_id) in {i["incident_id"] for i in month["items"]}
    assert (items[paged]["state"], items[paged]["level"], items[paged]["teams"]) == ("triggered", 1, ["frontline"])
    assert (items[acked]["state"], items[acked]["acknowledged_by"]) == ("acknowledged", "alice")
    assert items[paged]["next_escalation"] == {
        "at": (T0 + timedelta(hours=1)).isoformat(),
        "kind": "escalate",
        "level": 2,
    }
    assert items[acked]["next_escalation"] is None
    assert await _ids(http, service, state="acknowledged") == {acked}
    assert await _ids(http, service, state="open") == {paged, acked, low, stale}
    assert await _ids(http, service, priority="P3") == {low}
    assert await _ids(http, service, incident_id=paged) == {paged}
    assert await _ids(http, service, team="frontline") == {paged, acked, low, stale}
    assert await _ids(http, service, team="infrastructure") == set()


async def test_an_incidents_page_has_its_clocks_and_timeline(
    http: httpx.AsyncClient, seeded: dict[str, Envelope]
) -> None:
    paged = seeded["paged"].event_id
    detail = (await http.get(f"/v1/console/incidents/{paged}")).json()
    assert detail["incident"]["summary"] == "paged down"
    sla = {c["clock"]: c for c in detail["clocks"]["sla"]}
    assert sla["acknowledge"]["breach_at"] == (T0 + timedelta(minutes=15)).isoformat()
    assert not detail["clocks"]["policy_current"]  # the seeded opening names hash "h", not the policy's
    timeline = (await http.get(f"/v1/console/incidents/{paged}/timeline")).json()["entries"]
    assert [e["type"] for e in timeline] == ["incident.trigger", "incident.opened", "escalation.step_reached"]
    unknown = await http.get(f"/v1/console/incidents/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def _events(stream: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    name, data = "message", []
    async for line in stream.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield name, json.loads("".join(data))
            name, data = "message", []


async def _change(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """The next upsert or remove (a snapshot may come first: the feed reconnected, or started late)."""
    while True:
        name, data = await asyncio.wait_for(anext(events), timeout=20)
        if name != "snapshot":
            return name, data


async def test_the_stream_sends_the_list_then_each_committed_change(
    http: httpx.AsyncClient, history: History, service: str, seeded: dict[str, Envelope]
) -> None:
    params = {"service": service, "state": "triggered"}
    async with http.stream("GET", "/v1/console/stream", params=params) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream)
        name, data = await anext(events)
        assert name == "snapshot"
        triggered = {str(seeded[k].event_id) for k in ("paged", "low", "stale")}
        assert {i["incident_id"] for i in data["items"]} == triggered

        # Another list's incident changes (another service): this client hears nothing of it.
        elsewhere = History(history.store, f"{service}-elsewhere")
        elsewhere.offset = 10_000  # its own offsets, past this module's
        other = await elsewhere.open("other", at=NOW)
        await elsewhere.acknowledge(other, "carol", NOW)

        fresh = await history.open("fresh", at=NOW)  # committed now: NOTIFY after the commit
        name, data = await _change(events)
        assert name == "upsert"
        assert [i["incident_id"] for i in data["items"]] == [str(fresh.event_id)]

        await history.acknowledge(fresh, "bob", NOW)  # no longer "triggered": removed from this list
        name, data = await _change(events)
        assert (name, data["ids"]) == ("remove", [str(fresh.event_id)])


async def test_mtta_and_mttr_over_time(http: httpx.AsyncClient, service: str, seeded: dict[str, Envelope]) -> None:
    window = {"since": (T0 - timedelta(hours=1)).isoformat(), "until": (NOW + timedelta(minutes=1)).isoformat()}
    answer = await http.get("/v1/reports/series", params={"by": "service", "bucket": "hour", **window})
    assert answer.status_code == 200, answer.text
    mine = next(s for s in answer.json()["series"] if s["group"] == service)["points"]
    assert len(mine) in (2, 3)  # every hour from an hour before T0 to now, empty ones too
    everything = (await http.get("/v1/console/incidents", params={"service": service})).json()["items"]
    since = T0 - timedelta(hours=1)
    listed = [i for i in everything if datetime.fromisoformat(i["opened_at"]) >= since]  # the report's window
    assert sum(p["incidents"] for p in mine) == len(listed)
    assert sum(p["acknowledged"] for p in mine) == sum(1 for i in listed if i["acknowledged_at"])
    assert any(p["mtta_seconds"] is not None for p in mine)
    assert all(p["mttr_seconds"] is None for p in mine)  # nothing was resolved
    too_fine = await http.get("/v1/reports/series", params={"bucket": "hour", "since": "2020-01-01T00:00:00Z"})
    assert too_fine.status_code == 422
    assert too_fine.json()["errors"][0]["field"] == "bucket"


async def test_bad_input_is_a_problem_naming_the_field(http: httpx.AsyncClient, service: str) -> None:
    wrong = await http.get("/v1/console/incidents", params={"priority": "P9"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "priority"
    script = "start: 2026-11-27T22:00:00Z\nevents:\n  - {at: soon, action: trigger}\n"
    sim = await http.post("/v1/console/simulate", json={"script": script})
    assert sim.status_code == 422
    assert sim.headers["content-type"] == "application/problem+json"
    assert sim.json()["errors"][0]["field"] == "script.events.0.at"
    assert "Traceback" not in sim.text
    good = f"events:\n  - {{at: +0m, action: trigger, service: {service}, dedup_key: s, summary: x}}\n"
    ran = (await http.post("/v1/console/simulate", json={"script": good})).json()
    assert [e["level"] for e in ran["events"] if e["type"] == "escalation.step_reached"] == [1, 2]
    action = await http.post(f"/v1/console/incidents/{uuid.uuid4()}/explode", json={})
    assert action.status_code == 422
    assert action.json()["errors"][0]["field"] == "action"


async def test_roles_and_an_unreachable_intake(http: httpx.AsyncClient, seeded: dict[str, Envelope]) -> None:
    assert (await http.get("/v1/console/me", headers={"Authorization": ""})).status_code == 401
    me = await http.get("/v1/console/me", headers={"Authorization": f"Bearer {RESPONDER}"})
    assert me.json() == {"name": "rob", "role": "responder", "auth": True}
    denied = await http.get("/v1/reports/series", headers={"Authorization": f"Bearer {RESPONDER}"})
    assert denied.status_code == 403
    down = await http.post(
        f"/v1/console/incidents/{seeded['paged'].event_id}/acknowledge",
        json={},
        headers={"Authorization": f"Bearer {RESPONDER}"},
    )
    assert down.status_code == 503
    assert down.json()["title"] == "Intake unreachable"
    page = await http.get("/console/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
