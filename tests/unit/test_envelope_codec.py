"""The envelope on the wire: JSON round trip, Kafka headers, decode errors, UUIDv7 ids, upcasting."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared import events as ev
from shared.envelope import Envelope, EnvelopeError, decode, new_envelope
from shared.ids import uuid7, uuid7_unix_ms

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
EID = uuid.UUID("019ac5a0-1c00-7abc-8def-0123456789ab")


def _trigger(**kwargs: Any) -> Envelope:
    payload = ev.Trigger(service="web", dedup_key="k", summary="down", severity=ev.Severity.CRITICAL)
    return new_envelope(ev.TRIGGER, payload, incident_key="web/k", occurred_at=AT, **kwargs)


def _body(env: Envelope) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(env.to_json())
    return body


def _raw(**changes: Any) -> bytes:
    return json.dumps({**_body(_trigger(event_id=EID)), **changes}).encode()


def _reason(raw: bytes | None) -> str:
    with pytest.raises(EnvelopeError) as caught:
        decode(raw)
    return str(caught.value)


# --- encoding ---------------------------------------------------------------------------------------


def test_to_json_is_the_exact_wire_form() -> None:
    env = _trigger(event_id=EID)
    assert _body(env) == {
        "event_id": "019ac5a0-1c00-7abc-8def-0123456789ab",
        "type": "incident.trigger",
        "schema_version": 1,
        "occurred_at": "2026-11-27T12:00:00Z",
        "incident_key": "web/k",
        "incident_id": None,
        "causation_id": None,
        "correlation_id": "019ac5a0-1c00-7abc-8def-0123456789ab",
        "payload": {
            "service": "web",
            "dedup_key": "k",
            "summary": "down",
            "severity": "critical",
            "source": None,
            "priority": None,
            "custom_details": {},
            "component": None,
            "group": None,
            "event_class": None,
            "timestamp": None,
            "links": [],
            "images": [],
            "client": None,
            "client_url": None,
            "integration": None,
        },
    }


def test_headers_carry_type_version_and_event_id() -> None:
    env = _trigger(event_id=EID)
    assert env.kafka_headers() == [
        ("type", b"incident.trigger"),
        ("schema_version", b"1"),
        ("event_id", b"019ac5a0-1c00-7abc-8def-0123456789ab"),
    ]


def test_a_caused_envelope_carries_causation_and_the_root_correlation() -> None:
    root = _trigger(event_id=EID)
    middle = new_envelope(
        ev.INCIDENT_OPENED,
        ev.IncidentOpened(
            service="web",
            dedup_key="k",
            summary="down",
            severity=ev.Severity.CRITICAL,
            policy_id="p",
            policy_hash="0" * 64,
            priority="P1",
        ),
        incident_key="web/k",
        occurred_at=AT,
        incident_id=EID,
        cause=root,
    )
    leaf = new_envelope(ev.INCIDENT_RESOLVED, ev.IncidentResolved(), incident_key="web/k", occurred_at=AT, cause=middle)
    assert (middle.causation_id, middle.correlation_id, middle.incident_id) == (EID, EID, EID)
    assert (leaf.causation_id, leaf.correlation_id) == (middle.event_id, EID)
    assert len({root.event_id, middle.event_id, leaf.event_id}) == 3


def _envelopes() -> list[Envelope]:
    step = ev.EscalationStepReached(
        step_id=uuid.UUID(int=42),
        level=2,
        cycle=0,
        level_name="infra",
        targets=[ev.Target(type="webhook", url="http://127.0.0.1:9/x"), ev.Target(type="user", id="alice")],
        service="web",
        summary="down",
        severity=ev.Severity.ERROR,
        due_at=AT,
    )
    cause = _trigger(event_id=EID)
    return [
        cause,
        _trigger(incident_id=EID),
        new_envelope(
            ev.ACKNOWLEDGE,
            ev.Acknowledge(service="web", dedup_key="k", actor="al"),
            incident_key="web/k",
            occurred_at=AT,
        ),
        new_envelope(ev.RESOLVE, ev.Resolve(service="web", dedup_key="k"), incident_key="web/k", occurred_at=AT),
        new_envelope(ev.TIMER_FIRED, ev.TimerFired(token=3, due_at=AT), incident_key="web/k", occurred_at=AT),
        new_envelope(
            ev.ESCALATION_STEP_REACHED, step, incident_key="web/k", occurred_at=AT, incident_id=EID, cause=cause
        ),
    ]


@pytest.mark.parametrize("env", _envelopes(), ids=lambda e: e.type)
def test_decode_gives_back_what_to_json_wrote(env: Envelope) -> None:
    back = decode(env.to_json(), env.kafka_headers())
    assert back == env
    assert back.to_json() == env.to_json()
    model = ev.PAYLOADS[env.type]
    assert back.payload_as(model) == env.payload_as(model)


texts = st.text(min_size=1, max_size=40)


@settings(max_examples=200, deadline=None, database=None)
@given(
    texts,
    texts,
    st.text(min_size=1, max_size=200),
    st.sampled_from(list(ev.Severity)),
    st.dictionaries(texts, st.integers() | texts, max_size=3),
)
def test_any_trigger_round_trips(
    service: str, dedup: str, summary: str, severity: ev.Severity, details: dict[str, Any]
) -> None:
    payload = ev.Trigger(service=service, dedup_key=dedup, summary=summary, severity=severity, custom_details=details)
    env = new_envelope(ev.TRIGGER, payload, incident_key=f"{service}/{dedup}", occurred_at=AT)
    back = decode(env.to_json())
    assert back == env
    assert back.payload_as(ev.Trigger) == payload


# --- decode errors ----------------------------------------------------------------------------------


def test_decode_errors_are_value_errors() -> None:
    assert issubclass(EnvelopeError, ValueError)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message (tombstone)"),
        (b"", "not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"{nope", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b'{"a": "\xff"}', "not JSON: 'utf-8' codec can't decode byte 0xff in position 7: invalid start byte"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"3", "not a JSON object"),
    ],
)
def test_unreadable_bytes_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    assert _reason(raw) == reason


def test_an_unknown_type_is_named() -> None:
    assert _reason(_raw(type="incident.explode")) == "type: unknown message type 'incident.explode'"


def _payload(**changes: Any) -> dict[str, Any]:
    return {**_body(_trigger())["payload"], **changes}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"payload": _payload(severity="apocalyptic")},
            "severity: Input should be 'critical', 'error', 'warning' or 'info'",
        ),
        ({"payload": _payload(summary="")}, "summary: String should have at least 1 character"),
        ({"payload": _payload(priority="P9")}, "priority: String should match pattern '^P[1-5]$'"),
        ({"payload": _payload(colour="red")}, "colour: Extra inputs are not permitted"),
        ({"payload": {"service": "web"}}, "dedup_key: Field required"),
        (
            {"type": ev.TIMER_FIRED, "payload": {"token": -1, "due_at": "2026-11-27T12:00:00Z"}},
            "token: Input should be greater than or equal to 0",
        ),
        (
            {"type": ev.TIMER_FIRED, "payload": {"token": 1, "due_at": "2026-11-27T12:00:00"}},
            "due_at: Input should have timezone info",
        ),
        ({"occurred_at": "2026-11-27T12:00:00"}, "occurred_at: Input should have timezone info"),
        ({"schema_version": 0}, "schema_version: Input should be greater than or equal to 1"),
        ({"payload": [1]}, "payload: Input should be a valid dictionary"),
        ({"trace": "x"}, "trace: Extra inputs are not permitted"),
    ],
)
def test_a_bad_field_is_named(changes: dict[str, Any], reason: str) -> None:
    assert _reason(_raw(**changes)) == reason


def test_a_bad_event_id_is_named() -> None:
    assert _reason(_raw(event_id="not-a-uuid")).startswith("event_id: Input should be a valid UUID")


def test_a_bad_nested_target_is_named_with_its_index() -> None:
    step = json.loads(_envelopes()[-1].to_json())
    step["payload"]["targets"][1] = {"type": "slack"}
    assert _reason(json.dumps(step).encode()) == "targets.1: Value error, a slack target needs a url"


# --- UUIDv7 -----------------------------------------------------------------------------------------


def test_uuid7_is_version_7_with_the_rfc_variant_and_the_current_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(100)]
    after = time.time_ns() // 1_000_000
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {uuid.RFC_4122}
    assert all(before <= uuid7_unix_ms(i) <= after for i in ids)
    assert len(set(ids)) == 100


@pytest.mark.parametrize("ms", [0, 1, 1_700_000_000_123, 1_795_000_000_000, (1 << 48) - 1])
def test_uuid7_unix_ms_returns_the_milliseconds_given(ms: int) -> None:
    value = uuid7(ms)
    assert uuid7_unix_ms(value) == ms
    assert value.version == 7
    assert value.int >> 80 == ms
    assert str(value)[:13].replace("-", "") == f"{ms:012x}"


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.integers(0, (1 << 48) - 1), min_size=2, max_size=20, unique=True))
def test_uuid7_sorts_in_time_order(millis: list[int]) -> None:
    ids = [uuid7(ms) for ms in millis]
    assert [uuid7_unix_ms(i) for i in sorted(ids)] == sorted(millis)
    assert [uuid7_unix_ms(uuid.UUID(s)) for s in sorted(str(i) for i in ids)] == sorted(millis)


# --- upcasting --------------------------------------------------------------------------------------

# An incident.trigger as stored by a build where version 1 called the summary `title`.
STORED_V1 = (
    b'{"event_id": "019ac5a0-1c00-7abc-8def-0123456789ab", "type": "incident.trigger", "schema_version": 1, '
    b'"occurred_at": "2026-11-27T12:00:00Z", "incident_key": "web/k", "incident_id": null, '
    b'"causation_id": null, "correlation_id": "019ac5a0-1c00-7abc-8def-0123456789ab", '
    b'"payload": {"service": "web", "dedup_key": "k", "title": "disk full", "severity": "warning"}}'
)


def _title_to_summary(payload: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in payload.items() if k != "title"}
    out["summary"] = payload["title"]
    return out


def test_an_old_stored_payload_is_upcast_on_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ev.VERSIONS, ev.TRIGGER, 2)
    monkeypatch.setitem(ev.UPCASTERS, (ev.TRIGGER, 1), _title_to_summary)
    env = decode(STORED_V1)
    assert env.schema_version == 2
    assert env.payload == {"service": "web", "dedup_key": "k", "severity": "warning", "summary": "disk full"}
    assert env.event_id == EID
    assert env.occurred_at == AT
    assert env.payload_as(ev.Trigger) == ev.Trigger(
        service="web", dedup_key="k", summary="disk full", severity=ev.Severity.WARNING
    )
    # What this build writes is the current version, in the body and in the headers.
    fresh = _trigger()
    assert fresh.schema_version == 2
    assert ("schema_version", b"2") in fresh.kafka_headers()
    assert decode(fresh.to_json()) == fresh  # a current payload is not upcast again


def test_upcasters_are_chained_in_version_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {**_title_to_summary(payload), "source": "v2"}

    def v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
        calls.append(2)
        return {**payload, "source": payload["source"] + "+v3"}

    monkeypatch.setitem(ev.VERSIONS, ev.TRIGGER, 3)
    monkeypatch.setitem(ev.UPCASTERS, (ev.TRIGGER, 1), v1_to_v2)
    monkeypatch.setitem(ev.UPCASTERS, (ev.TRIGGER, 2), v2_to_v3)
    env = decode(STORED_V1)
    assert calls == [1, 2]
    assert env.schema_version == 3
    assert env.payload["source"] == "v2+v3"
    assert env.payload["summary"] == "disk full"


def test_a_missing_upcaster_and_a_too_new_version_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ev.VERSIONS, ev.TRIGGER, 2)
    assert _reason(STORED_V1) == "schema_version: no upcaster for incident.trigger v1"
    too_new = STORED_V1.replace(b'"schema_version": 1', b'"schema_version": 3')
    assert _reason(too_new) == "schema_version: 3 is newer than this build knows (2)"


def test_an_upcast_payload_is_still_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ev.VERSIONS, ev.TRIGGER, 2)
    monkeypatch.setitem(ev.UPCASTERS, (ev.TRIGGER, 1), lambda p: dict(p))  # forgets to rename `title`
    assert _reason(STORED_V1) == "summary: Field required"


def test_without_a_version_bump_the_old_payload_is_rejected_by_the_model() -> None:
    assert ev.current_version(ev.TRIGGER) == 1
    assert _reason(STORED_V1) == "summary: Field required"


class _Custom(BaseModel):
    n: int


def test_a_registered_type_uses_its_own_version_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ev.PAYLOADS, "test.custom", _Custom)
    monkeypatch.setitem(ev.VERSIONS, "test.custom", 4)
    env = new_envelope("test.custom", _Custom(n=1), incident_key="x/y", occurred_at=AT)
    assert env.kafka_headers()[:2] == [("type", b"test.custom"), ("schema_version", b"4")]
    assert decode(env.to_json()) == env
    assert _reason(env.model_copy(update={"payload": {"n": "x"}}).to_json()).startswith(
        "n: Input should be a valid integer"
    )
