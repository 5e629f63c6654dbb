"""The intake API in-process against the real broker (and an unreachable one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.intake.app import create_app
from shared.envelope import Envelope, decode
from shared.settings import IntakeSettings
from shared.topics import INCIDENT_COMMANDS

pytestmark = pytest.mark.integration


async def _client(bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(IntakeSettings(kafka_bootstrap_servers=bootstrap))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield client


async def _command_for(bootstrap: str, key: str) -> Envelope:
    """The first command on incidents.commands with this key."""
    consumer = AIOKafkaConsumer(INCIDENT_COMMANDS, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async for record in consumer:
            if record.key == key.encode():
                return decode(record.value)
    finally:
        await consumer.stop()
    raise AssertionError(f"no command for {key}")


@pytest.fixture
async def intake(kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(kafka_bootstrap):
        yield client


async def test_trigger_is_on_the_topic_when_202_is_answered(intake: httpx.AsyncClient, kafka_bootstrap: str) -> None:
    dedup = uuid.uuid4().hex
    response = await intake.post(
        "/v1/events",
        json={
            "event_action": "trigger",
            "service": "web",
            "dedup_key": dedup,
            "summary": "down",
            "severity": "critical",
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["incident_key"] == f"web/{dedup}"
    env = await _command_for(kafka_bootstrap, f"web/{dedup}")
    assert str(env.event_id) == body["event_id"]
    assert env.type == "incident.trigger"
    assert env.payload["severity"] == "critical"


async def test_missing_dedup_key_is_generated_and_returned(intake: httpx.AsyncClient) -> None:
    response = await intake.post("/v1/events", json={"event_action": "trigger", "service": "web", "summary": "x"})
    assert response.status_code == 202
    body = response.json()
    assert body["incident_key"] == f"web/{body['dedup_key']}"
    assert uuid.UUID(body["dedup_key"]).version == 7


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_action": "trigger", "service": "web"}, "trigger.summary"),
        ({"event_action": "trigger", "service": "web", "summary": "x", "severity": "bad"}, "trigger.severity"),
        ({"event_action": "acknowledge", "service": "web"}, "acknowledge.dedup_key"),
        ({"event_action": "explode", "service": "web"}, "event_action"),
        ({"event_action": "resolve", "service": "", "dedup_key": "k"}, "resolve.service"),
        # '/' begins the dedup key in an incident key: "a/b" + "k" would read back as service "a".
        ({"event_action": "trigger", "service": "a/b", "summary": "x"}, "trigger.service"),
    ],
)
async def test_invalid_event_gets_problem_json_naming_the_field(
    intake: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await intake.post("/v1/events", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]], problem


async def test_unreachable_kafka_answers_503_with_retry_after() -> None:
    async for client in _client("127.0.0.1:1"):
        health = await client.get("/healthz")
        assert health.status_code == 503
        response = await client.post(
            "/v1/events", json={"event_action": "trigger", "service": "web", "dedup_key": "k", "summary": "x"}
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "command_type", "payload_field"),
    [
        ({"event_action": "escalate", "to_level": 2}, "incident.escalate", ("to_level", 2)),
        ({"event_action": "snooze", "duration_seconds": 600}, "incident.snooze", ("duration_seconds", 600.0)),
        ({"event_action": "reassign", "team": "dba"}, "incident.reassign", ("team", "dba")),
        ({"event_action": "note", "text": "rebooting db1"}, "incident.add_note", ("text", "rebooting db1")),
        (
            {"event_action": "pause_sla", "reason": "waiting on customer"},
            "incident.pause_sla",
            ("reason", "waiting on customer"),
        ),
        ({"event_action": "resume_sla"}, "incident.resume_sla", ("actor", "ops")),
    ],
)
async def test_operator_actions_become_commands_recording_the_actor(
    intake: httpx.AsyncClient,
    kafka_bootstrap: str,
    body: dict[str, object],
    command_type: str,
    payload_field: tuple[str, object],
) -> None:
    dedup = uuid.uuid4().hex
    response = await intake.post("/v1/events", json={"service": "web", "dedup_key": dedup, "actor": "ops", **body})
    assert response.status_code == 202, response.text
    env = await _command_for(kafka_bootstrap, f"web/{dedup}")
    assert env.type == command_type
    assert env.payload["actor"] == "ops"
    assert env.payload[payload_field[0]] == payload_field[1]


async def test_reassign_needs_exactly_one_destination(intake: httpx.AsyncClient) -> None:
    body = {"event_action": "reassign", "service": "web", "dedup_key": "k", "policy": "p", "team": "t"}
    response = await intake.post("/v1/events", json=body)
    assert response.status_code == 422
    assert "exactly one of policy or team" in response.json()["detail"]
