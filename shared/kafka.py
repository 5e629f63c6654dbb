"""Kafka adapters shared by the services: topic setup, the acknowledged publisher, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.envelope import Envelope
from shared.topics import ALL_TOPICS, dead_letter_topic


class PublishError(RuntimeError):
    """Kafka did not acknowledge a write; the caller must not report success."""


async def ensure_topics(bootstrap: str, partitions: int, extra: Iterable[str] = (), replication: int = 1) -> None:
    """Create the project's topics if they do not exist yet (idempotent, safe from every worker)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in (*ALL_TOPICS, *extra) if t not in existing]
        if wanted:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=replication) for t in wanted]
                )
            except TopicAlreadyExistsError:
                pass  # another worker won the race
    finally:
        await admin.close()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str, timeout: float = 30) -> list[TopicPartition]:
    """Return the partitions of `topic`, waiting for a just-created topic to show in metadata."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        metadata = await consumer._client.fetch_all_metadata()  # the consumer's own cache can lag
        parts = metadata.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if loop.time() > deadline:
            raise KafkaError(f"topic {topic} has no partitions after {timeout}s")
        await asyncio.sleep(0.2)


def make_producer(bootstrap: str, client_id: str, **overrides: object) -> AIOKafkaProducer:
    """Return a producer that only reports success once every in-sync replica has the write."""
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class Publisher:
    """Writes envelopes keyed by incident key and waits for Kafka's acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, topic: str, env: Envelope) -> None:
        """Write one envelope; raise PublishError unless Kafka acknowledged it."""
        try:
            await self._producer.send_and_wait(
                topic, value=env.to_json(), key=env.incident_key.encode(), headers=env.kafka_headers()
            )
        except KafkaError as exc:
            raise PublishError(f"Kafka did not acknowledge {env.event_id}: {exc!r}") from exc

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """Write envelopes all in flight together; per envelope None when acknowledged, else its error.

        Cheaper than one `publish` task per envelope: the sends are queued in order, then the
        acknowledgements awaited together.
        """
        futures: list[asyncio.Future[Any] | BaseException] = []
        refused: BaseException | None = None
        for env in envelopes:
            if refused is not None:  # Kafka is away: do not wait out the timeout once per message
                futures.append(refused)
                continue
            try:
                futures.append(
                    await self._producer.send(
                        topic, value=env.to_json(), key=env.incident_key.encode(), headers=env.kafka_headers()
                    )
                )
            except KafkaError as exc:
                refused = exc
                futures.append(exc)
        pending = [f for f in futures if not isinstance(f, BaseException)]
        await asyncio.wait(pending) if pending else None
        results: list[BaseException | None] = []
        for f in futures:
            if isinstance(f, BaseException):
                results.append(PublishError(f"Kafka did not take the message: {f!r}"))
            elif f.exception() is not None:
                results.append(PublishError(f"Kafka did not acknowledge: {f.exception()!r}"))
            else:
                results.append(None)
        return results

    async def dead_letter(
        self,
        consumer: str,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        """Park an unreadable message with the reason, so it is never silently dropped."""
        record = {
            "reason": reason,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "key": key.decode("utf-8", "replace") if key is not None else None,
            "value": value.decode("utf-8", "replace") if value is not None else None,
            "dead_lettered_at": datetime.now(UTC).isoformat(),
        }
        try:
            await self._producer.send_and_wait(dead_letter_topic(consumer), value=json.dumps(record).encode(), key=key)
        except KafkaError as exc:
            raise PublishError(f"dead letter for {topic}/{partition}/{offset} failed: {exc!r}") from exc
