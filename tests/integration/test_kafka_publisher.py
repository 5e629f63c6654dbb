"""The shared Kafka adapter against the real broker: keyed, acknowledged writes and dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer

from shared import events as ev
from shared.envelope import decode, new_envelope
from shared.kafka import Publisher, ensure_topics, make_producer
from shared.topics import dead_letter_topic

pytestmark = pytest.mark.integration


async def _read_one(bootstrap: str, topic: str, match: bytes) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        async for record in consumer:
            if record.value is not None and match in record.value:
                return record.key, record.value, list(record.headers)
    finally:
        await consumer.stop()
    raise AssertionError("consumer ended")


async def test_publish_waits_for_ack_and_keys_by_incident(kafka_bootstrap: str) -> None:
    topic = f"it.publish.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, 3, extra=[topic])
    producer = make_producer(kafka_bootstrap, "it")
    await producer.start()
    try:
        env = new_envelope(
            ev.TRIGGER,
            ev.Trigger(service="web", dedup_key="k1", summary="down"),
            incident_key="web/k1",
            occurred_at=datetime.now(UTC),
        )
        await Publisher(producer).publish(topic, env)
    finally:
        await producer.stop()
    key, value, headers = await _read_one(kafka_bootstrap, topic, str(env.event_id).encode())
    assert key == b"web/k1"
    assert decode(value) == env
    assert ("type", b"incident.trigger") in headers
    assert ("schema_version", b"1") in headers


async def test_dead_letter_keeps_the_message_and_the_reason(kafka_bootstrap: str) -> None:
    consumer_name = f"it-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, 1, extra=[dead_letter_topic(consumer_name)])
    producer = make_producer(kafka_bootstrap, "it")
    await producer.start()
    try:
        await Publisher(producer).dead_letter(
            consumer_name,
            topic="incidents.commands",
            partition=2,
            offset=7,
            key=b"k",
            value=b"{not json",
            reason="not JSON",
        )
    finally:
        await producer.stop()
    _, value, _ = await _read_one(kafka_bootstrap, dead_letter_topic(consumer_name), b"not JSON")
    record = json.loads(value)
    assert record["value"] == "{not json"
    assert record["reason"] == "not JSON"
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == ("incidents.commands", 2, 7)
