"""Schemathesis against the intake's OpenAPI document, in-process on the real broker: whatever a client
sends to any operation, the answer is never a 5xx, conforms to the document, and a 4xx is problem+json
naming the problem."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi import checks as openapi_checks

from services.intake.app import create_app
from shared import events as ev
from shared.envelope import new_envelope
from shared.kafka import Publisher, make_producer
from shared.settings import IntakeSettings
from shared.topics import ESCALATION_EVENTS
from tests.support import eventually

pytestmark = pytest.mark.integration

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "intake.json"


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with its `#/$defs/...` references replaced by their targets (no model here is recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


def _document() -> dict[str, Any]:
    """The checked-in document, with the webhook bodies' own `$defs` inlined: schemathesis cannot
    negate a body whose schema refers into itself, so it would generate no negative case for them."""
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    for item in document["paths"].values():
        for operation in item.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = content.get("schema", {})
                if "$defs" in schema:
                    content["schema"] = _inlined(schema, schema["$defs"])
    return document


SCHEMA = schemathesis.openapi.from_dict(_document())
Operation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]


def _operations() -> list[Operation]:
    found: list[Operation] = []
    for result in SCHEMA.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()  # the document itself is broken
        found.append(result.ok())
    return found


OPERATIONS = _operations()
FUZZ = settings(
    max_examples=50,  # per operation and generation mode: about 1,100 requests in all
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

RUN = uuid.uuid4().hex[:8]
SERVICE = f"fuzz-{RUN}"
# An incident the directory knows, so that operator actions reach Kafka rather than all ending in 404.
INCIDENT = uuid.uuid4()
# Not in the document: with authentication off, the webhooks name their service in `?service=`.
WEBHOOKS = ("/v1/integrations/alertmanager", "/v1/integrations/grafana")


def test_the_document_lists_every_intake_operation() -> None:
    paths = {op.path for op in OPERATIONS}
    assert {"/v1/events", "/v1/events/batch", "/v2/enqueue", *WEBHOOKS} <= paths
    assert {p for p in paths if p.startswith("/v1/incidents/{incident_id}/")} == {
        f"/v1/incidents/{{incident_id}}/{action}"
        for action in ("acknowledge", "resolve", "escalate", "snooze", "reassign", "notes")
    }


async def _open_incident(bootstrap: str) -> None:
    """Write `incident.opened` for INCIDENT to escalations.events, as the escalator would."""
    opened = new_envelope(
        ev.INCIDENT_OPENED,
        ev.IncidentOpened(
            service=SERVICE,
            dedup_key="fuzzed",
            summary="fuzzed",
            severity=ev.Severity.ERROR,
            policy_id="p",
            policy_hash="h",
            priority="P3",
        ),
        incident_key=f"{SERVICE}/fuzzed",
        occurred_at=datetime.now(UTC),
        incident_id=INCIDENT,
    )
    producer = make_producer(bootstrap, "it-fuzz")
    await producer.start()
    try:
        await Publisher(producer).publish(ESCALATION_EVENTS, opened)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The intake app with open access and no practical rate limit, its directory caught up."""
    await _open_incident(kafka_bootstrap)
    app = create_app(
        IntakeSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            escalation_config_dir=tmp_path_factory.mktemp("open"),
            intake_rate_per_second=1e9,
            intake_rate_burst=1_000_000,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30) as client:

            async def knows_the_incident() -> httpx.Response | None:
                response = await client.post(f"/v1/incidents/{INCIDENT}/acknowledge")
                return None if response.status_code == 503 else response

            ready = await eventually(knows_the_incident, timeout=60, what="the incident directory to catch up")
            assert ready.status_code == 202, ready.text
            yield client


def _aimed(case: AnyCase, pick: bool) -> AnyCase:
    """Point a case at what the test set up: the known incident, a service for the webhooks."""
    if pick and "incident_id" in (case.path_parameters or {}):
        case.path_parameters = {**(case.path_parameters or {}), "incident_id": str(INCIDENT)}
    if pick and case.operation.path in WEBHOOKS:
        case.query = {**(case.query or {}), "service": SERVICE}
    return case


def _request(client: httpx.AsyncClient, case: AnyCase) -> httpx.Request:
    """The httpx request for a case, its body serialized as `requests` would (JSON with ASCII escapes)."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=str(client.base_url))
    content: bytes | None = None
    if "json" in kwargs:
        content = json.dumps(kwargs["json"], allow_nan=False).encode()
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        content = data.encode() if isinstance(data, str) else bytes(data)
    return client.build_request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        cookies=kwargs.get("cookies"),
        content=content,
    )


def problem_json_names_the_problem(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """Every 4xx is RFC 9457 problem+json with a title and a detail; a 400 or 422 lists each field at fault."""
    del ctx
    if not 400 <= response.status_code < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.split(";")[0].strip() != "application/problem+json":
        raise Failure(operation=case.operation.label, title="4xx not problem+json", message=content_type)
    body = json.loads(response.content)
    title, detail = body.get("title"), body.get("detail")
    if body.get("status") != response.status_code or not isinstance(title, str) or not title:
        raise Failure(operation=case.operation.label, title="4xx without status and title", message=str(body))
    if not isinstance(detail, str) or not detail:
        raise Failure(operation=case.operation.label, title="4xx without detail", message=str(body))
    if response.status_code in (400, 422):
        errors = body.get("errors")
        if not errors or not all(isinstance(e.get("field"), str) and e["field"] for e in errors):
            raise Failure(operation=case.operation.label, title="4xx without the field at fault", message=str(body))
    return True


def negative_data_rejection(ctx: CheckContext, response: Response, case: AnyCase) -> bool | None:
    """Schemathesis's check, but for what PagerDuty ignores on purpose: an acknowledge or resolve may carry
    anything in the trigger-only members (payload, links, images, client, client_url)."""
    body = case.body
    if case.operation.path == "/v2/enqueue" and isinstance(body, dict) and body.get("event_action") != "trigger":
        return None
    return openapi_checks.negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    negative_data_rejection,
    problem_json_names_the_problem,
]


_STRATEGIES: dict[tuple[str, GenerationMode], st.SearchStrategy[AnyCase]] = {}


def _cases(operation: Operation, mode: GenerationMode) -> st.SearchStrategy[AnyCase]:
    key = (operation.label, mode)
    if key not in _STRATEGIES:
        generated = operation.as_strategy(generation_mode=mode)
        _STRATEGIES[key] = st.tuples(generated, st.booleans()).map(lambda c: _aimed(*c))
    return _STRATEGIES[key]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
@FUZZ
@given(data=st.data())
async def test_any_request_gets_a_documented_answer_and_never_a_5xx(
    intake: httpx.AsyncClient, operation: Operation, mode: GenerationMode, data: st.DataObject
) -> None:
    case = data.draw(_cases(operation, mode), label="case")
    request = _request(intake, case)
    response = await intake.send(request)
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    "body", [b"\xff", b"[" * 100_000, b'{"n": ' + b"9" * 5000 + b"}"], ids=["not-utf8", "deep", "long-int"]
)
@pytest.mark.parametrize("path", ["/v1/events", f"/v1/incidents/{INCIDENT}/notes"])
async def test_an_unreadable_body_gets_a_problem_naming_the_body(
    intake: httpx.AsyncClient, path: str, body: bytes
) -> None:
    response = await intake.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert str(response.status_code) in _documented(path)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body"


def _documented(path: str) -> set[str]:
    route = "/v1/incidents/{incident_id}/notes" if path.startswith("/v1/incidents/") else path
    return set(_document()["paths"][route]["post"]["responses"])


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


def _trigger(**extra: Any) -> dict[str, Any]:
    return {"event_action": "trigger", "service": SERVICE, "summary": "fuzzed", **extra}


def _pagerduty(**details: Any) -> dict[str, Any]:
    payload = {"summary": "fuzzed", "source": "fuzz", "severity": "info", "custom_details": details}
    return {"routing_key": SERVICE, "event_action": "trigger", "payload": payload}


_FIRING = {"alerts": [{"status": "firing", "labels": {"alertname": "Fuzzed"}}]}
_WEBHOOK = f"/v1/integrations/alertmanager?service={SERVICE}"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        # Each was a 500, or was accepted and written otherwise than sent, before it was fixed.
        ("/v1/events", _trigger(custom_details={"a": "\ud800"}), 422, "custom_details"),
        ("/v1/events", _trigger(custom_details={"\udfff": 1}), 422, "custom_details"),
        ("/v1/events", _trigger(custom_details={"a": [float("nan")]}), 422, "custom_details"),
        ("/v1/events", _trigger(custom_details=_nested(300)), 422, "custom_details"),
        (
            "/v1/events/batch",
            {"events": [_trigger(), _trigger(custom_details={"a": "\ud800"})]},
            422,
            "events.1.custom_details",
        ),
        ("/v2/enqueue", _pagerduty(a=_nested(300)), 400, "payload.custom_details"),
        ("/v2/enqueue", _pagerduty(a=float("inf")), 400, "body"),
        ("/v2/enqueue", b'{"routing_key": "k", "n": ' + b"9" * 5000 + b"}", 400, "body"),
        (_WEBHOOK, b"[" * 100_000 + b"]" * 100_000, 400, "body"),
        ("/v1/integrations/grafana?service=" + "s" * 256, _FIRING, 400, "service"),
    ],
    ids=[
        "surrogate-value",
        "surrogate-key",
        "nan",
        "deep-details",
        "batch-surrogate",
        "pagerduty-deep-details",
        "pagerduty-infinity",
        "pagerduty-long-int",
        "webhook-deep-body",
        "webhook-long-service",
    ],
)
async def test_bodies_json_cannot_carry_get_a_problem_naming_the_field(
    intake: httpx.AsyncClient, path: str, body: Any, status: int, field: str
) -> None:
    # json.dumps writes a lone surrogate as the escape \ud800 and NaN as the literal NaN, as a sender might.
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await intake.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["field"] == field
    assert problem["detail"].startswith(f"{field}: ")
