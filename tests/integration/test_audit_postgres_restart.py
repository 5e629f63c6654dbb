"""Fault test: PostgreSQL restarts while events stream in; afterwards the audit log holds every
distinct event exactly once (redeliveries and producer duplicates included), and the chain verifies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from services.audit.consumer import AuditIngestor
from services.audit.store import AuditStore, use_writer_role
from services.audit.verify import verify_items
from services.stack import postgres
from services.stack.local import LocalStack
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.kafka import Publisher, ensure_topics, make_producer
from shared.topics import INCIDENT_COMMANDS
from tests.support import eventually

pytestmark = pytest.mark.integration

EVENTS = 3000
DUPLICATE_EVERY = 10  # every 10th event is sent twice, as a producer retry would


def _events(service: str) -> list[Envelope]:
    return [
        new_envelope(
            ev.TRIGGER,
            ev.Trigger(service=service, dedup_key=f"k{i % 50}", summary=f"event {i}"),
            incident_key=f"{service}/k{i % 50}",
            occurred_at=datetime.now(UTC),
        )
        for i in range(EVENTS)
    ]


async def _send(bootstrap: str, envelopes: list[Envelope], halfway: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for i, env in enumerate(envelopes):
            copies = 2 if i % DUPLICATE_EVERY == 0 else 1
            for _ in range(copies):
                await producer.send(
                    INCIDENT_COMMANDS, env.to_json(), key=env.incident_key.encode(), headers=env.kafka_headers()
                )
            if i == len(envelopes) // 2:
                halfway.set()
            if i % 100 == 0:
                await asyncio.sleep(0.02)  # a steady stream over a few seconds, not one burst
        await producer.flush()
    finally:
        await producer.stop()


async def test_rows_equal_distinct_events_after_a_postgres_restart(scratch_database: str, kafka_bootstrap: str) -> None:
    service = f"restart-{uuid.uuid4().hex[:8]}"
    envelopes = _events(service)
    await ensure_topics(kafka_bootstrap, 8)
    pool = await asyncpg.create_pool(scratch_database, min_size=1, max_size=4, init=use_writer_role)
    store = AuditStore(pool)
    producer = make_producer(kafka_bootstrap, "it-restart")
    await producer.start()
    ingestor = AuditIngestor(kafka_bootstrap, store, Publisher(producer), group=f"it-restart-{uuid.uuid4().hex[:8]}")
    await ingestor.start()
    paths = LocalStack.from_env().postgres
    failures_before = REGISTRY.get_sample_value("audit_batch_failures_total") or 0.0
    try:
        halfway = asyncio.Event()
        sending = asyncio.create_task(_send(kafka_bootstrap, envelopes, halfway))
        await halfway.wait()
        await asyncio.to_thread(postgres.stop, paths)  # while the stream is flowing
        await asyncio.to_thread(postgres.start, paths)
        await sending

        # Only the commands we sent: an escalator still running from the end-to-end tests may answer
        # them with events of its own on escalations.events.
        mine = "SELECT count(*) FROM audit_log WHERE service = $1 AND topic = 'incidents.commands'"

        async def all_there() -> int | None:
            try:
                conn = await asyncpg.connect(scratch_database)
            except (asyncpg.PostgresError, OSError):
                return None
            try:
                count: int = await conn.fetchval(mine, service)
            finally:
                await conn.close()
            return count if count >= EVENTS else None

        await eventually(all_there, timeout=120, what=f"{EVENTS} audited events")
        conn = await asyncpg.connect(scratch_database)
        try:
            assert await conn.fetchval(mine, service) == EVENTS
            stored = await conn.fetch(
                "SELECT event_id FROM audit_log WHERE service = $1 AND topic = 'incidents.commands'", service
            )
        finally:
            await conn.close()
        assert {r["event_id"] for r in stored} == {e.event_id for e in envelopes}
        # The restart really hit the ingestor: some batch failed and was read again.
        assert (REGISTRY.get_sample_value("audit_batch_failures_total") or 0.0) > failures_before
        report = await verify_items(store.evidence(), None)
        assert report.ok, report.text()
        await ingestor.stop()
        # Every connection the restart broke went back to the pool (none is held by a dead operation).
        assert pool.get_idle_size() == pool.get_size()
    finally:
        await ingestor.stop()
        await producer.stop()
        await asyncio.wait_for(pool.close(), timeout=30)
