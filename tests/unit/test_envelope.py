"""The message envelope: ids, JSON round trip, Kafka headers, decode errors, upcasting."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from shared import events as ev
from shared.envelope import EnvelopeError, decode, new_envelope
from shared.ids import uuid7, uuid7_unix_ms

AT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _trigger() -> Any:
    return new_envelope(
        ev.TRIGGER, ev.Trigger(service="web", dedup_key="k", summary="down"), incident_key="web/k", occurred_at=AT
    )


def test_uuid7_is_version_7_time_ordered_and_carries_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(200)]
    after = time.time_ns() // 1_000_000
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {uuid.RFC_4122}
    assert all(before <= uuid7_unix_ms(i) <= after for i in ids)
    assert uuid7_unix_ms(uuid7(1_700_000_000_123)) == 1_700_000_000_123
    assert sorted(ids, key=uuid7_unix_ms) == sorted(ids, key=lambda i: i.int >> 80)


def test_round_trip_and_headers() -> None:
    env = _trigger()
    assert decode(env.to_json()) == env
    assert dict(env.kafka_headers()) == {
        "type": b"incident.trigger",
        "schema_version": b"1",
        "event_id": str(env.event_id).encode(),
    }
    assert env.correlation_id == env.event_id


def test_a_caused_event_carries_causation_and_correlation() -> None:
    cause = _trigger()
    effect = new_envelope(
        ev.INCIDENT_RESOLVED, ev.IncidentResolved(actor="a"), incident_key="web/k", occurred_at=AT, cause=cause
    )
    assert effect.causation_id == cause.event_id
    assert effect.correlation_id == cause.correlation_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (None, "tombstone"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_unreadable_bytes_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        decode(raw)


def test_unknown_type_and_bad_payload_field_are_named() -> None:
    body = json.loads(_trigger().to_json())
    with pytest.raises(EnvelopeError, match=r"unknown message type 'incident\.explode'"):
        decode(json.dumps({**body, "type": "incident.explode"}).encode())
    with pytest.raises(EnvelopeError, match="severity"):
        decode(json.dumps({**body, "payload": {**body["payload"], "severity": "apocalyptic"}}).encode())
    with pytest.raises(EnvelopeError, match="event_id"):
        decode(json.dumps({**body, "event_id": "not-a-uuid"}).encode())
    with pytest.raises(EnvelopeError, match="newer than this build"):
        decode(json.dumps({**body, "schema_version": 99}).encode())


# A version-1 trigger as stored before a (hypothetical) version 2 renamed `summary` to `title`.
STORED_V1 = (
    '{"event_id": "01a21a81-dc79-75a3-ba57-6e5ae6c56ace", "type": "test.renamed", "schema_version": 1, '
    '"occurred_at": "2026-11-27T00:57:27.929716Z", "incident_key": "web/k", "incident_id": null, '
    '"causation_id": null, "correlation_id": null, "payload": {"summary": "disk full"}}'
)


class _RenamedV2(BaseModel):
    title: str


def test_old_stored_payloads_are_upcast_by_the_function_next_to_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ev.PAYLOADS, "test.renamed", _RenamedV2)
    monkeypatch.setitem(ev.VERSIONS, "test.renamed", 2)
    monkeypatch.setitem(ev.UPCASTERS, ("test.renamed", 1), lambda p: {"title": p["summary"]})
    env = decode(STORED_V1.encode())
    assert env.schema_version == 2
    assert env.payload == {"title": "disk full"}
    monkeypatch.delitem(ev.UPCASTERS, ("test.renamed", 1))
    with pytest.raises(EnvelopeError, match="no upcaster"):
        decode(STORED_V1.encode())


def test_derived_uuid7_is_deterministic_version_7_and_carries_the_time() -> None:
    from shared.ids import derived_uuid7

    a = derived_uuid7(1_700_000_000_123, "cmd", 0, "incident.opened")
    assert a == derived_uuid7(1_700_000_000_123, "cmd", 0, "incident.opened")
    assert a != derived_uuid7(1_700_000_000_123, "cmd", 1, "incident.opened")
    assert a.version == 7
    assert a.variant == uuid.RFC_4122
    assert uuid7_unix_ms(a) == 1_700_000_000_123


def test_the_audit_path_keeps_a_bad_payload_but_not_a_bad_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.loads(_trigger().to_json())
    odd = json.dumps({**body, "payload": {**body["payload"], "severity": "apocalyptic"}}).encode()
    assert decode(odd, check_payload=False).payload["severity"] == "apocalyptic"  # recorded as sent
    assert decode(odd, check_payload=False) == decode(odd, check_payload=False)
    for raw, reason in ((b"{nope", "Invalid JSON"), (b"[1, 2]", "should be an object"), (None, "tombstone")):
        with pytest.raises(EnvelopeError, match=reason):
            decode(raw, check_payload=False)
    with pytest.raises(EnvelopeError, match="event_id"):
        decode(json.dumps({**body, "event_id": "not-a-uuid"}).encode(), check_payload=False)
    monkeypatch.setitem(ev.PAYLOADS, "test.renamed", _RenamedV2)
    monkeypatch.setitem(ev.VERSIONS, "test.renamed", 2)
    monkeypatch.setitem(ev.UPCASTERS, ("test.renamed", 1), lambda p: {"title": p["summary"]})
    assert decode(STORED_V1.encode(), check_payload=False).payload == {"title": "disk full"}
