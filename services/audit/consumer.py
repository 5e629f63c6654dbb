"""Audit ingestion: every topic in, rows and offsets committed together in PostgreSQL."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from services.audit.store import AuditStore, AuditStoreError, Record
from shared.envelope import EnvelopeError, decode
from shared.kafka import Publisher, PublishError
from shared.logging import get_logger
from shared.topics import ALL_TOPICS

log = get_logger("audit")
CONSUMER = "audit"
FETCH_MIN_BYTES = 256 * 1024

ROWS = Counter("audit_rows_inserted_total", "Rows inserted into the audit log")
DUPLICATES = Counter("audit_duplicates_total", "Messages already in the audit log (redelivered)")
BATCH_FAILURES = Counter("audit_batch_failures_total", "Batches not stored (database or Kafka error); read again")
DEAD_LETTERS = Counter("audit_dead_letters_total", "Unreadable messages sent to the dead-letter topic")


def _stage(topic: str) -> int:
    """Where a topic comes in the pipeline: commands, then escalation events, then results."""
    return ALL_TOPICS.index(topic) if topic in ALL_TOPICS else len(ALL_TOPICS)


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue from the offsets stored in PostgreSQL, not Kafka's."""

    def __init__(self, ingestor: AuditIngestor) -> None:
        self._ingestor = ingestor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Nothing to do: offsets are only ever stored with their rows."""

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek each partition to its stored next offset, or to the beginning."""
        await self._ingestor.seek_to_stored(assigned)


class AuditIngestor:
    """Consumes all topics and writes them, with their offsets, in one transaction per batch."""

    def __init__(
        self, bootstrap: str, store: AuditStore, publisher: Publisher, group: str = CONSUMER, batch_wait_ms: int = 100
    ) -> None:
        self.group = group
        self.store = store
        self.publisher = publisher
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id="audit",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the escalator writes in transactions
            # The broker answers a fetch once it has FETCH_MIN_BYTES or `batch_wait_ms` passed: when
            # the audit keeps up, a poll then carries that long's records in one transaction, not
            # a few records each (fewer transactions for PostgreSQL, fewer fetches for the broker).
            fetch_min_bytes=FETCH_MIN_BYTES if batch_wait_ms else 1,
            fetch_max_wait_ms=max(1, batch_wait_ms),
        )
        self._stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe and start the loop."""
        await self.consumer.start()
        self.consumer.subscribe(list(ALL_TOPICS), listener=_SeekToStored(self))
        self.task = asyncio.create_task(self._run(), name="audit-ingest")

    async def stop(self) -> None:
        """Finish the batch in hand and close."""
        self._stopping.set()
        if self.task is not None:
            await self.task
        await self.consumer.stop()

    async def seek_to_stored(self, partitions: set[TopicPartition]) -> None:
        """Position the consumer at the offsets PostgreSQL holds."""
        while True:
            try:
                stored = await self.store.offsets(self.group)
                break
            except AuditStoreError:
                log.exception("cannot read stored offsets; retrying", loop="audit")
                await asyncio.sleep(1.0)
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            batches = {}
            try:
                batches = await self.consumer.getmany(timeout_ms=200, max_records=1000)
                if batches:
                    await self._store(batches)
            except (AuditStoreError, PublishError, KafkaError):
                BATCH_FAILURES.inc()
                log.exception("audit batch failed; it will be read again", loop="audit")
                await asyncio.sleep(1.0)
                for tp, records in batches.items():
                    if records:
                        self.consumer.seek(tp, records[0].offset)

    async def _store(self, batches: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        """Write a poll's records of every partition with their offsets in one transaction.

        One transaction per poll, not one per partition: when the audit keeps up, a poll holds a few
        records of many partitions, and a transaction each cost PostgreSQL more than the rows did
        (`escalation bench` at 100 events/s: 0.34 cores of PostgreSQL for 300 rows/s). Offset rows
        and chain heads are locked in sorted order: two workers that share partitions for a moment
        during a rebalance wait for each other; a transaction that fails anyway is read again.
        """
        rows: list[Record] = []
        offsets: dict[tuple[str, int], int] = {}
        # Rows are numbered (seq) in the order written. A poll may hold a command and the events it
        # caused, and the events' results: writing the topics in the pipeline's order puts each
        # cause before its effects, as the log read in seq order (search, export) shows them.
        for tp, records in sorted(batches.items(), key=lambda item: (_stage(item[0].topic), item[0].partition)):
            if not records:
                continue
            for rec in records:
                try:
                    env = decode(rec.value, check_payload=False)
                except EnvelopeError as exc:
                    await self._dead_letter(rec, str(exc))
                    continue
                rows.append(Record(rec.topic, rec.partition, rec.offset, env))
            offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
        if not offsets:
            return
        inserted = await self.store.write_batch(self.group, rows, offsets)  # the loop re-reads on error
        ROWS.inc(inserted)
        DUPLICATES.inc(len(rows) - inserted)

    async def _dead_letter(self, rec: ConsumerRecord, reason: str) -> None:
        DEAD_LETTERS.inc()
        log.warning("unreadable message dead-lettered", reason=reason, topic=rec.topic, offset=rec.offset)
        await self.publisher.dead_letter(
            "audit",
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            key=rec.key,
            value=rec.value,
            reason=reason,
        )
