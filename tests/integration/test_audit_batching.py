"""The audit ingestor against the real PostgreSQL: one poll of many partitions is one transaction."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition

from services.audit.consumer import AuditIngestor
from services.audit.migrate import migrate
from services.audit.store import AuditStore, Record
from shared import events as ev
from shared.envelope import new_envelope
from shared.kafka import Publisher, make_producer
from shared.topics import ESCALATION_EVENTS, INCIDENT_COMMANDS, NOTIFICATION_RESULTS

pytestmark = pytest.mark.integration


class CountingStore(AuditStore):
    """The real store, counting its write transactions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.batches: list[dict[tuple[str, int], int]] = []

    async def write_batch(self, consumer: str, records: Sequence[Record], offsets: dict[tuple[str, int], int]) -> int:
        self.batches.append(dict(offsets))
        return await super().write_batch(consumer, records, offsets)


@pytest.fixture
async def pool(scratch_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(scratch_database, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord:
    env = new_envelope(
        ev.TRIGGER,
        ev.Trigger(service="db", dedup_key=f"p{partition}o{offset}", summary="disk full"),
        incident_key=f"db/p{partition}o{offset}",
        occurred_at=datetime.now(UTC),
    )
    value = env.to_json()
    return ConsumerRecord(topic, partition, offset, 0, 0, None, value, None, 0, len(value), [])


async def test_a_poll_of_many_partitions_is_written_in_one_transaction(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    topic = f"it-audit-{uuid.uuid4().hex[:8]}"
    store = CountingStore(pool)
    publisher = Publisher.owning(lambda: make_producer(kafka_bootstrap, "it-batching"))  # for dead letters; none here
    ingestor = AuditIngestor(kafka_bootstrap, store, publisher, group="it-batching")
    # What a poll hands over when the audit keeps up: a few records of each of many partitions.
    poll = {TopicPartition(topic, p): [_record(topic, p, 10 * p + i) for i in range(3)] for p in range(8)}
    poll[TopicPartition(topic, 8)] = []  # a partition with nothing new moves no offset
    await ingestor._store(poll)
    assert len(store.batches) == 1
    assert store.batches[0] == {(topic, p): 10 * p + 3 for p in range(8)}
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE topic = $1", topic) == 24
    assert await store.offsets("it-batching") == {(topic, p): 10 * p + 3 for p in range(8)}
    # Each partition keeps its own chain, numbered from 1 in offset order.
    rows = await pool.fetch("SELECT chain, chain_seq, kafka_offset FROM audit_log WHERE topic = $1", topic)
    chains = {r["chain"] for r in rows}
    assert len(chains) == 8
    for chain in chains:
        mine = sorted((r["chain_seq"], r["kafka_offset"]) for r in rows if r["chain"] == chain)
        assert [seq for seq, _ in mine] == [1, 2, 3]
        assert [o for _, o in mine] == sorted(o for _, o in mine)
    # The same poll again (a redelivery) writes nothing and stays one transaction.
    await ingestor._store(poll)
    assert len(store.batches) == 2
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE topic = $1", topic) == 24


async def test_a_poll_is_written_in_the_pipelines_order_so_causes_come_first(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    store = CountingStore(pool)
    publisher = Publisher.owning(lambda: make_producer(kafka_bootstrap, "it-batching"))
    ingestor = AuditIngestor(kafka_bootstrap, store, publisher, group="it-order")
    # The poll lists the results first, then the events, then the commands that caused them.
    poll = {
        TopicPartition(NOTIFICATION_RESULTS, 2): [_record(NOTIFICATION_RESULTS, 2, 0)],
        TopicPartition(ESCALATION_EVENTS, 5): [_record(ESCALATION_EVENTS, 5, 0), _record(ESCALATION_EVENTS, 5, 1)],
        TopicPartition(INCIDENT_COMMANDS, 7): [_record(INCIDENT_COMMANDS, 7, 0)],
        TopicPartition(INCIDENT_COMMANDS, 1): [_record(INCIDENT_COMMANDS, 1, 0)],
    }
    await ingestor._store(poll)
    rows = await pool.fetch("SELECT topic, kafka_partition, kafka_offset FROM audit_log ORDER BY seq")
    assert [(r["topic"], r["kafka_partition"], r["kafka_offset"]) for r in rows] == [
        (INCIDENT_COMMANDS, 1, 0),
        (INCIDENT_COMMANDS, 7, 0),
        (ESCALATION_EVENTS, 5, 0),
        (ESCALATION_EVENTS, 5, 1),
        (NOTIFICATION_RESULTS, 2, 0),
    ]
