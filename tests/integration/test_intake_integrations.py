"""The intake's monitoring-system APIs in-process against the real broker: PagerDuty Events v2,
Alertmanager and Grafana webhooks, the batch form, integration keys and tokens, flood control, body
size."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from shared import events as ev
from shared.auth import token_hash
from shared.envelope import Envelope, decode
from shared.settings import IntakeSettings
from shared.topics import INCIDENT_COMMANDS
from tests.support import eventually, intake_client, publish_opened

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[1] / "unit" / "samples"
RUN = uuid.uuid4().hex[:8]
SERVICE, OTHER = f"intg-{RUN}", f"other-{RUN}"
KEY, RESPONDER, AUDITOR = f"int-key-{RUN}", f"responder-{RUN}", f"auditor-{RUN}"


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


async def _commands(bootstrap: str, service: str, count: int) -> list[Envelope]:
    """The first `count` commands of `service` on incidents.commands."""
    consumer = AIOKafkaConsumer(INCIDENT_COMMANDS, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Envelope] = []
    try:
        async for record in consumer:
            if record.key is not None and record.key.decode().startswith(f"{service}/"):
                found.append(decode(record.value))
                if len(found) == count:
                    return found
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("intake-access")
    (folder / "access.yaml").write_text(
        "access:\n"
        f"  prometheus:\n    role: integration\n    service: {SERVICE}\n    token_sha256: {token_hash(KEY)}\n"
        f"  ops-bot:\n    role: responder\n    token_sha256: {token_hash(RESPONDER)}\n"
        f"  jane:\n    role: auditor\n    token_sha256: {token_hash(AUDITOR)}\n"
    )
    return folder


@pytest.fixture(scope="module")
async def secured(config: Path, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    """An intake with keys and tokens configured."""
    settings = IntakeSettings(kafka_bootstrap_servers=kafka_bootstrap, escalation_config_dir=config)
    async for client in intake_client(settings):
        yield client


async def test_pagerduty_trigger_acknowledge_resolve(secured: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    trigger = {**_sample("pagerduty_trigger.json"), "routing_key": KEY, "dedup_key": f"pd-{RUN}"}
    accepted = await secured.post("/v2/enqueue", json=trigger)
    assert accepted.status_code == 202
    assert accepted.json() == {"status": "success", "message": "Event processed", "dedup_key": f"pd-{RUN}"}
    generated = await secured.post("/v2/enqueue", json={**trigger, "dedup_key": None})
    assert generated.status_code == 202
    new_key = generated.json()["dedup_key"]
    assert new_key
    assert new_key != f"pd-{RUN}"
    for action in ("acknowledge", "resolve"):
        body = {"routing_key": KEY, "event_action": action, "dedup_key": f"pd-{RUN}"}
        assert (await secured.post("/v2/enqueue", json=body)).status_code == 202
    commands = await _commands(kafka_bootstrap, SERVICE, 4)
    # One incident key keeps its order; the generated key's trigger is on another partition.
    mine = [c for c in commands if c.incident_key == f"{SERVICE}/pd-{RUN}"]
    assert [c.type for c in mine] == [ev.TRIGGER, ev.ACKNOWLEDGE, ev.RESOLVE]
    assert [c.type for c in commands if c.incident_key == f"{SERVICE}/{new_key}"] == [ev.TRIGGER]
    payload = mine[0].payload
    assert payload["service"] == SERVICE  # from the integration key, not the body
    assert payload["summary"] == "Example alert on host1.example.com"
    assert (payload["severity"], payload["component"], payload["event_class"]) == ("info", "postgres", "deploy")
    assert payload["links"] == [{"href": "https://example.com/", "text": "Link text"}]
    assert payload["custom_details"] == {"ping time": "1500ms", "load avg": 0.75}
    assert payload["integration"] == "pagerduty"


async def test_pagerduty_errors_are_400_naming_the_field(secured: httpx.AsyncClient) -> None:
    trigger = {**_sample("pagerduty_trigger.json"), "routing_key": KEY}
    bad = copy.deepcopy(trigger)
    bad["payload"]["severity"] = "apocalyptic"
    response = await secured.post("/v2/enqueue", json=bad)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "payload.severity"
    assert response.json()["message"] == "Event object is invalid"
    ack = await secured.post("/v2/enqueue", json={"routing_key": KEY, "event_action": "acknowledge"})
    assert ack.status_code == 400
    assert ack.json()["errors"][0]["field"] == "dedup_key"
    not_json = await secured.post("/v2/enqueue", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert not_json.json()["errors"][0]["field"] == "body"
    unknown = await secured.post("/v2/enqueue", json={**trigger, "routing_key": "not-a-key"})
    assert unknown.status_code == 401
    not_integration = await secured.post("/v2/enqueue", json={**trigger, "routing_key": RESPONDER})
    assert not_integration.status_code == 403


async def test_alertmanager_two_firing_one_resolved(secured: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    body = _sample("alertmanager_two_firing_one_resolved.json")
    no_key = await secured.post("/v1/integrations/alertmanager", json=body)
    assert no_key.status_code == 401
    response = await secured.post(
        "/v1/integrations/alertmanager", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 202
    events = response.json()["events"]
    assert [e["type"] for e in events] == [ev.TRIGGER, ev.TRIGGER, ev.RESOLVE]
    assert [e["dedup_key"] for e in events] == [a["fingerprint"] for a in body["alerts"]]
    # A Grafana webhook through the same shape, its key in the query string.
    grafana = await secured.post(f"/v1/integrations/grafana?key={KEY}", json=_sample("grafana_webhook.json"))
    assert grafana.status_code == 202
    sent = await _commands(kafka_bootstrap, SERVICE, 4 + 3 + len(grafana.json()["events"]))
    # Commands of different alerts sit on different partitions: find each by its key, not by position.
    (db1,) = [c for c in sent if c.incident_key == f"{SERVICE}/{body['alerts'][0]['fingerprint']}"]
    assert db1.type == ev.TRIGGER
    assert db1.payload["severity"] == "critical"
    assert db1.payload["priority"] == "P1"
    assert db1.payload["links"][0]["href"].startswith("http://prometheus.example.com:9090/graph")
    (db3,) = [c for c in sent if c.incident_key == f"{SERVICE}/{body['alerts'][2]['fingerprint']}"]
    assert db3.type == ev.RESOLVE
    assert any(c.payload.get("integration") == "grafana" for c in sent)


async def test_batch_and_native_tokens(secured: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    events = [
        {"event_action": "trigger", "service": OTHER, "dedup_key": f"b{i}", "summary": f"batch {i}"} for i in range(3)
    ]
    as_responder = {"Authorization": f"Bearer {RESPONDER}"}
    batch = await secured.post("/v1/events/batch", json={"events": events}, headers=as_responder)
    assert batch.status_code == 202
    assert [e["incident_key"] for e in batch.json()["events"]] == [f"{OTHER}/b{i}" for i in range(3)]
    assert sorted(c.incident_key for c in await _commands(kafka_bootstrap, OTHER, 3)) == [
        f"{OTHER}/b{i}" for i in range(3)
    ]
    as_integration = {"Authorization": f"Bearer {KEY}"}
    wrong_service = await secured.post("/v1/events", json=events[0], headers=as_integration)
    assert wrong_service.status_code == 403
    assert SERVICE in wrong_service.json()["title"]
    auditor = await secured.post("/v1/events", json=events[0], headers={"Authorization": f"Bearer {AUDITOR}"})
    assert auditor.status_code == 403
    assert (await secured.post("/v1/events", json=events[0])).status_code == 401
    too_many = await secured.post("/v1/events/batch", json={"events": events * 334}, headers=as_responder)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "events"
    rule = await secured.post(
        "/v1/events/batch",
        json={"events": [events[0], {"event_action": "reassign", "service": OTHER, "dedup_key": "x"}]},
        headers=as_responder,
    )
    assert rule.status_code == 422
    assert rule.json()["errors"][0]["field"].startswith("events.1")


async def test_flood_control_and_body_limit(config: Path, kafka_bootstrap: str) -> None:
    settings = IntakeSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        escalation_config_dir=config,
        intake_rate_per_second=0.5,
        intake_rate_burst=2,
    )
    async for client in intake_client(settings):
        body = {"routing_key": KEY, "event_action": "resolve", "dedup_key": f"flood-{RUN}"}
        assert [(await client.post("/v2/enqueue", json=body)).status_code for _ in range(2)] == [202, 202]
        limited = await client.post("/v2/enqueue", json=body)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        huge = {"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "x" * (600 * 1024)}}
        too_big = await client.post("/v2/enqueue", json=huge)
        assert too_big.status_code == 413
        assert too_big.json()["title"] == "Request body too large"


async def test_without_keys_the_routing_key_names_the_service(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = IntakeSettings(kafka_bootstrap_servers=kafka_bootstrap, escalation_config_dir=tmp_path)
    service = f"open-{RUN}"
    async for client in intake_client(settings):
        trigger = {**_sample("pagerduty_trigger.json"), "routing_key": service, "dedup_key": "k"}
        assert (await client.post("/v2/enqueue", json=trigger)).status_code == 202
        body = _sample("alertmanager_two_firing_one_resolved.json")
        missing = await client.post("/v1/integrations/alertmanager", json=body)
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["field"] == "service"
        slashed = await client.post("/v1/integrations/alertmanager?service=a/b", json=body)
        assert slashed.status_code == 400
        assert slashed.json()["errors"][0]["field"] == "service"
        named = await client.post(f"/v1/integrations/alertmanager?service={service}", json=body)
        assert named.status_code == 202
    assert f"{service}/k" in {c.incident_key for c in await _commands(kafka_bootstrap, service, 4)}


async def test_operator_actions_by_incident_id(secured: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    service = f"ops-{RUN}"
    opened = await publish_opened(kafka_bootstrap, service, "disk", summary="disk full")
    as_responder = {"Authorization": f"Bearer {RESPONDER}"}
    url = f"/v1/incidents/{opened.incident_id}"

    async def acknowledged() -> httpx.Response | None:
        response = await secured.post(f"{url}/acknowledge", headers=as_responder)
        return None if response.status_code == 503 or response.status_code == 404 else response

    ack = await eventually(acknowledged, timeout=30, what="the directory to learn the incident")
    assert ack.status_code == 202
    assert ack.json()["incident_key"] == f"{service}/disk"
    snooze = await secured.post(f"{url}/snooze", json={"duration_seconds": 600}, headers=as_responder)
    assert snooze.status_code == 202
    note = await secured.post(f"{url}/notes", json={"text": "looking at it"}, headers=as_responder)
    assert note.status_code == 202
    bad = await secured.post(f"{url}/reassign", json={"policy": "a", "team": "b"}, headers=as_responder)
    assert bad.status_code == 422
    as_auditor = {"Authorization": f"Bearer {AUDITOR}"}
    assert (await secured.post(f"{url}/resolve", headers=as_auditor)).status_code == 403
    unknown = await secured.post(f"/v1/incidents/{uuid.uuid4()}/resolve", headers=as_responder)
    assert unknown.status_code == 404
    sent = await _commands(kafka_bootstrap, service, 3)
    assert [c.type for c in sent] == [ev.ACKNOWLEDGE, ev.SNOOZE, ev.ADD_NOTE]
    assert {c.payload["actor"] for c in sent} == {"ops-bot"}  # the token's holder, whatever the body says
    assert sent[1].payload["duration_seconds"] == 600
