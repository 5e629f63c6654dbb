"""The intake's envelopes are the ones new_envelope makes, built without validating them again."""

from __future__ import annotations

from datetime import UTC, datetime

from services.intake.kafka_link import command_envelope
from shared import events as ev
from shared.envelope import decode, new_envelope
from shared.ids import uuid7_unix_ms

AT = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_command_envelope_is_what_new_envelope_makes() -> None:
    payload = ev.Trigger(
        service="web", dedup_key="d", summary="down", custom_details={"n": 10**30, "s": "é"}, integration="native"
    )
    env = command_envelope(ev.TRIGGER, payload, "web/d", AT)
    expected = new_envelope(ev.TRIGGER, payload, incident_key="web/d", occurred_at=AT, event_id=env.event_id)
    assert env == expected
    assert env.to_json() == expected.to_json()
    assert env.kafka_headers() == expected.kafka_headers()
    assert decode(env.to_json()) == expected
    assert env.correlation_id == env.event_id
    assert env.event_id.version == 7
    assert abs(uuid7_unix_ms(env.event_id) - datetime.now(UTC).timestamp() * 1000) < 60_000


def test_each_command_gets_its_own_id_and_its_type_s_version() -> None:
    payload = ev.Acknowledge(service="web", dedup_key="d", actor="alice")
    first, second = (command_envelope(ev.ACKNOWLEDGE, payload, "web/d", AT) for _ in range(2))
    assert first.event_id != second.event_id
    assert first.schema_version == ev.current_version(ev.ACKNOWLEDGE)
