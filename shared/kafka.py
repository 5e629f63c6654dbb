"""Kafka adapters shared by the services: topic setup, the acknowledged publisher, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    OutOfOrderSequenceNumber,
    TopicAlreadyExistsError,
    UnknownProducerId,
)

from shared.envelope import Envelope, KafkaHeaders
from shared.logging import get_logger
from shared.topics import ALL_TOPICS, dead_letter_topic

_log = get_logger("kafka")


class PublishError(RuntimeError):
    """Kafka did not acknowledge a write; the caller must not report success."""


# Errors after which an idempotent producer never succeeds again. When batches expire while the
# broker is away, aiokafka's producer is left out of step with the broker's sequence numbers and,
# unlike the Java client, does not bump its epoch: every later send fails the same way (aiokafka
# issue #1017). Only a new producer, with a new producer id, writes again.
PRODUCER_STATE_ERRORS: tuple[type[KafkaError], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
)


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
    """Writes envelopes keyed by incident key and waits for Kafka's acknowledgement.

    Made with `Publisher.owning(factory)`, it owns its producer (`start`, `stop`) and replaces it
    when a send fails with one of PRODUCER_STATE_ERRORS; the failed send still raises PublishError
    (nothing is reported as written that Kafka did not acknowledge), the next one uses the new
    producer. Made with `Publisher(producer)`, it only writes through the caller's producer.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        renew: Callable[[], AIOKafkaProducer] | None = None,
        ack_timeout: float | None = None,
    ) -> None:
        self._producer = producer
        self._renew = renew
        self._ack_timeout = ack_timeout  # None: as long as the producer keeps retrying
        self._renewing = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        self.renewals = 0

    @classmethod
    def owning(cls, factory: Callable[[], AIOKafkaProducer], ack_timeout: float | None = None) -> Publisher:
        """A publisher on its own producer from `factory`, renewed by the same factory when stuck.

        With `ack_timeout`, a write not acknowledged within that many seconds raises PublishError
        (while the broker is away aiokafka may retry a batch far longer than a caller can wait). The
        message may still reach Kafka later: the caller reports it as not accepted, never the reverse.
        """
        return cls(factory(), renew=factory, ack_timeout=ack_timeout)

    @property
    def producer(self) -> AIOKafkaProducer:
        """The producer in use now."""
        return self._producer

    async def start(self) -> None:
        """Start the producer (connects to Kafka)."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and stop the producer, and any replaced one still closing."""
        await self._producer.stop()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)

    async def _after_failure(self, failed: AIOKafkaProducer, exc: BaseException) -> None:
        """Replace `failed` with a new producer when `exc` shows its idempotence state is broken."""
        if self._renew is None or not isinstance(exc, PRODUCER_STATE_ERRORS):
            return
        async with self._renewing:
            if self._producer is not failed:
                return  # a concurrent send already replaced it
            fresh = self._renew()
            try:
                await fresh.start()
            except (KafkaError, OSError):
                await fresh.stop()
                return  # Kafka unreachable: keep the old one; the next failure tries again
            self._producer = fresh
            self.renewals += 1
            retired = asyncio.create_task(failed.stop(), name="retired-producer")
            self._retired.add(retired)
            retired.add_done_callback(self._retired.discard)
            _log.warning("producer replaced after a producer-state error", error=repr(exc), renewals=self.renewals)

    async def publish(self, topic: str, env: Envelope) -> None:
        """Write one envelope; raise PublishError unless Kafka acknowledged it."""
        value, key = env.to_json(), env.incident_key.encode()
        await self.publish_record(topic, key, value, env.kafka_headers(), what=str(env.event_id))

    async def publish_record(
        self, topic: str, key: bytes, value: bytes, headers: KafkaHeaders | None = None, *, what: str = "a record"
    ) -> None:
        """Write one record as it is (a service's own topic); raise PublishError unless Kafka acknowledged it."""
        producer = self._producer
        try:
            async with asyncio.timeout(self._ack_timeout):  # no extra task per request, unlike wait_for
                await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except TimeoutError as exc:
            raise PublishError(f"Kafka did not acknowledge {what} within {self._ack_timeout} s") from exc
        except KafkaError as exc:
            await self._after_failure(producer, exc)
            raise PublishError(f"Kafka did not acknowledge {what}: {exc!r}") from exc

    async def publish_many(self, topic: str, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """Write envelopes all in flight together; per envelope None when acknowledged, else its error.

        Cheaper than one `publish` task per envelope: the sends are queued in order, then the
        acknowledgements awaited together.
        """
        producer = self._producer
        loop = asyncio.get_running_loop()
        deadline = None if self._ack_timeout is None else loop.time() + self._ack_timeout
        futures: list[asyncio.Future[Any] | BaseException] = []
        refused: BaseException | None = None
        try:
            async with asyncio.timeout_at(deadline):
                for env in envelopes:
                    futures.append(
                        await producer.send(
                            topic, value=env.to_json(), key=env.incident_key.encode(), headers=env.kafka_headers()
                        )
                    )
        except (KafkaError, TimeoutError) as exc:
            refused = exc
        # Kafka is away: the unsent ones share the refusal instead of waiting out the timeout each.
        futures.extend([refused] * (len(envelopes) - len(futures)) if refused is not None else [])
        pending = [f for f in futures if not isinstance(f, BaseException)]
        if pending:
            await asyncio.wait(pending, timeout=None if deadline is None else max(deadline - loop.time(), 0.001))
        late = TimeoutError(f"not acknowledged within {self._ack_timeout} s")
        results: list[BaseException | None] = []
        stuck: BaseException | None = None
        for f in futures:
            cause = f if isinstance(f, BaseException) else (f.exception() if f.done() else late)
            if cause is None:
                results.append(None)
                continue
            if isinstance(cause, PRODUCER_STATE_ERRORS):
                stuck = cause
            error = PublishError(f"Kafka did not {'take' if f is cause else 'acknowledge'} the message: {cause!r}")
            error.__cause__ = cause
            results.append(error)
        if stuck is not None:
            await self._after_failure(producer, stuck)
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
        producer = self._producer
        try:
            await producer.send_and_wait(dead_letter_topic(consumer), value=json.dumps(record).encode(), key=key)
        except KafkaError as exc:
            await self._after_failure(producer, exc)
            raise PublishError(f"dead letter for {topic}/{partition}/{offset} failed: {exc!r}") from exc
