"""The native routes answer alike whether the fast path or FastAPI's route takes the request.

`application/json` takes the fast path; `application/vnd.test+json`, which FastAPI reads as JSON
too, goes to the route. Same status, content type, Retry-After and body (ids aside) for each case.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared import events as ev
from shared.auth import token_hash
from shared.envelope import decode
from shared.settings import IntakeSettings
from shared.topics import INCIDENT_COMMANDS
from tests.support import intake_client

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
SERVICE, OTHER = f"fast-{RUN}", f"fast-other-{RUN}"
KEY, RESPONDER, AUDITOR = f"fast-key-{RUN}", f"fast-responder-{RUN}", f"fast-auditor-{RUN}"
FAST, ROUTE = "application/json", "application/vnd.test+json"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fast-path-access")
    (folder / "access.yaml").write_text(
        "access:\n"
        f"  monitor:\n    role: integration\n    service: {SERVICE}\n    token_sha256: {token_hash(KEY)}\n"
        f"  bot:\n    role: responder\n    token_sha256: {token_hash(RESPONDER)}\n"
        f"  jane:\n    role: auditor\n    token_sha256: {token_hash(AUDITOR)}\n"
    )
    return folder


@pytest.fixture(scope="module")
async def intake(config: Path, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in intake_client(
        IntakeSettings(kafka_bootstrap_servers=kafka_bootstrap, escalation_config_dir=config)
    ):
        yield client


def _trigger(service: str = SERVICE, **extra: Any) -> dict[str, Any]:
    return {"event_action": "trigger", "service": service, "summary": "fast path", **extra}


BEARER_KEY, BEARER_RESPONDER = f"Bearer {KEY}", f"Bearer {RESPONDER}"
CASES: list[tuple[str, str, Any, str | None]] = [
    ("trigger", "/v1/events", _trigger(dedup_key="d1", custom_details={"n": 10**30}), BEARER_KEY),
    ("generated-dedup-key", "/v1/events", _trigger(), BEARER_KEY),
    ("acknowledge", "/v1/events", {"event_action": "acknowledge", "service": SERVICE, "dedup_key": "d1"}, BEARER_KEY),
    ("no-token", "/v1/events", _trigger(), None),
    ("unknown-token", "/v1/events", _trigger(), "Bearer nope"),
    ("auditor", "/v1/events", _trigger(), f"Bearer {AUDITOR}"),
    ("other-service", "/v1/events", _trigger(OTHER), BEARER_KEY),
    ("invalid-field", "/v1/events", _trigger(severity="loud"), BEARER_KEY),
    ("unknown-action", "/v1/events", {"event_action": "shout", "service": SERVICE}, BEARER_KEY),
    ("rule", "/v1/events", {"event_action": "reassign", "service": SERVICE, "dedup_key": "d1"}, BEARER_KEY),
    ("surrogate", "/v1/events", _trigger(custom_details={"a": "\ud800"}), BEARER_KEY),
    ("nan", "/v1/events", _trigger(custom_details={"a": float("nan")}), BEARER_KEY),
    ("not-an-object", "/v1/events", [_trigger()], BEARER_KEY),
    ("not-json", "/v1/events", b"{not json", BEARER_KEY),
    ("batch", "/v1/events/batch", {"events": [_trigger(dedup_key=f"b{i}") for i in range(3)]}, BEARER_RESPONDER),
    ("batch-empty", "/v1/events/batch", {"events": []}, BEARER_RESPONDER),
    ("batch-other-service", "/v1/events/batch", {"events": [_trigger(), _trigger(OTHER)]}, BEARER_KEY),
    ("batch-rule", "/v1/events/batch", {"events": [_trigger(), {"event_action": "snooze"}]}, BEARER_RESPONDER),
    (
        "batch-rule-after-validation",
        "/v1/events/batch",
        {"events": [_trigger(), _trigger(custom_details={"a": "\ud800"})]},
        BEARER_RESPONDER,
    ),
]


def _comparable(response: httpx.Response) -> tuple[int, str | None, str | None, Any]:
    """Status, content type, Retry-After and body, with the ids that differ per request blanked out."""
    body = response.json()
    for accepted in [body, *body.get("events", [])] if isinstance(body, dict) else []:
        if "event_id" in accepted:
            uuid.UUID(accepted.pop("event_id"))
            if _is_uuid(accepted["dedup_key"]):  # generated: one per request
                accepted["incident_key"] = accepted["dedup_key"] = "generated"
    return response.status_code, response.headers.get("content-type"), response.headers.get("retry-after"), body


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def _send(client: httpx.AsyncClient, path: str, body: Any, auth: str | None, content_type: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type, **({"authorization": auth} if auth else {})}
    return await client.post(path, content=content, headers=headers)


@pytest.mark.parametrize(("path", "body", "auth"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_both_ways_answer_alike(intake: httpx.AsyncClient, path: str, body: Any, auth: str | None) -> None:
    fast = await _send(intake, path, body, auth, FAST)
    route = await _send(intake, path, body, auth, ROUTE)
    assert _comparable(fast) == _comparable(route)


async def test_an_accepted_event_is_on_the_topic_keyed_by_its_incident(
    intake: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    dedup = f"topic-{RUN}"
    response = await _send(intake, "/v1/events", _trigger(dedup_key=dedup), BEARER_KEY, FAST)
    assert response.status_code == 202
    record = await _record(kafka_bootstrap, f"{SERVICE}/{dedup}".encode())
    command = decode(record.value)
    assert str(command.event_id) == response.json()["event_id"]
    assert (command.type, command.payload["summary"]) == (ev.TRIGGER, "fast path")
    assert dict(record.headers)["type"] == ev.TRIGGER.encode()


async def _record(bootstrap: str, key: bytes) -> ConsumerRecord[bytes, bytes]:
    consumer = AIOKafkaConsumer(INCIDENT_COMMANDS, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async for record in consumer:
            if record.key == key:
                return record
    finally:
        await consumer.stop()
    raise AssertionError(f"no record keyed {key!r}")


async def test_over_the_rate_limit_both_ways_answer_429(config: Path, kafka_bootstrap: str) -> None:
    settings = IntakeSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        escalation_config_dir=config,
        intake_rate_per_second=0.01,
        intake_rate_burst=2,
    )
    async for client in intake_client(settings):
        answers = [await _send(client, "/v1/events", _trigger(), BEARER_KEY, way) for way in (FAST, ROUTE)]
        assert [a.status_code for a in answers] == [202, 202]
        fast, route = [await _send(client, "/v1/events", _trigger(), BEARER_KEY, way) for way in (FAST, ROUTE)]
        assert (fast.status_code, fast.headers["content-type"]) == (429, "application/problem+json")
        assert fast.json() == route.json()
        assert int(fast.headers["retry-after"]) >= 1
        assert int(route.headers["retry-after"]) >= 1


async def test_a_streamed_body_over_the_limit_is_refused_alike(intake: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": ['
        for _ in range(600):  # 600 KB with no Content-Length: the limit is found while reading
            yield json.dumps(_trigger(summary="x" * 1000)).encode() + b","
        yield b"{}]}"

    answers = [
        await intake.post(
            "/v1/events/batch", content=chunks(), headers={"content-type": way, "authorization": BEARER_RESPONDER}
        )
        for way in (FAST, ROUTE)
    ]
    # Refused either way with 413 (it was the route's 422 "body not readable" while BodyLimit raised
    # inside FastAPI's body parsing).
    assert _comparable(answers[0]) == _comparable(answers[1])
    assert answers[0].status_code == 413
    assert answers[0].json()["status"] == 413
    assert answers[0].headers["content-type"] == "application/problem+json"
