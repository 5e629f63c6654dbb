"""Fault test: Kafka stops while clients send. Every request gets 202 or 503 (never another answer),
and every event answered 202 is in the audit log once Kafka is back."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from services.audit.consumer import AuditIngestor
from services.audit.store import AuditStore, use_writer_role
from services.intake.app import create_app
from services.stack import kafka
from services.stack.local import LocalStack
from shared.kafka import Publisher, make_producer
from shared.settings import IntakeSettings
from tests.support import eventually

pytestmark = pytest.mark.integration

SENDERS = 8


async def test_every_request_gets_202_or_503_and_every_202_is_audited(
    kafka_bootstrap: str, scratch_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service = f"outage-{uuid.uuid4().hex[:8]}"
    app = create_app(
        IntakeSettings(kafka_bootstrap_servers=kafka_bootstrap, escalation_config_dir=tmp_path_factory.mktemp("open"))
    )
    statuses: dict[int, int] = {}
    accepted: set[str] = set()
    stop_sending = asyncio.Event()
    paths = LocalStack.from_env().kafka

    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake", timeout=60)

        async def sender(n: int) -> None:
            """Half the senders post single events, the other half batches of five."""
            i = 0
            while not stop_sending.is_set():
                events = [
                    {"event_action": "trigger", "service": service, "dedup_key": f"s{n}-{i}-{j}", "summary": "x"}
                    for j in range(1 if n % 2 == 0 else 5)
                ]
                if len(events) == 1:
                    response = await client.post("/v1/events", json=events[0])
                else:
                    response = await client.post("/v1/events/batch", json={"events": events})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 202:
                    body = response.json()
                    accepted.update(e["event_id"] for e in body.get("events", [body]))
                else:
                    assert response.headers["retry-after"]
                i += 1

        senders = [asyncio.create_task(sender(n)) for n in range(SENDERS)]
        try:
            try:
                await eventually(lambda: _at_least(accepted, 50), timeout=60, what="traffic before the outage")
                await asyncio.to_thread(kafka.stop, paths)
                before_outage = len(accepted)
                await eventually(lambda: _at_least_503(statuses, SENDERS), timeout=60, what="503s during the outage")
            finally:
                # Kafka comes back whatever happened above: later tests need it.
                await asyncio.to_thread(kafka.start, paths)
                await asyncio.to_thread(kafka.wait_ready, paths)
            await eventually(lambda: _at_least(accepted, before_outage + 50), timeout=120, what="202s after it")
        finally:  # the senders stop on every path, or they outlive the app they post to
            stop_sending.set()
            done, pending = await asyncio.wait(senders, timeout=90)
            for task in pending:
                task.cancel()
            await client.aclose()
        for task in done:
            task.result()  # a sender's assertion failure surfaces here

    assert set(statuses) <= {202, 503}, statuses
    assert statuses[503] >= SENDERS

    pool = await asyncpg.create_pool(scratch_database, min_size=1, max_size=4, init=use_writer_role)
    producer = make_producer(kafka_bootstrap, "it-outage")
    await producer.start()
    ingestor = AuditIngestor(kafka_bootstrap, AuditStore(pool), Publisher(producer), f"it-outage-{uuid.uuid4().hex}")
    await ingestor.start()
    try:

        async def all_audited() -> set[str] | None:
            rows = await pool.fetch("SELECT event_id::text AS id FROM audit_log WHERE service = $1", service)
            stored = {r["id"] for r in rows}
            return stored if accepted <= stored else None

        stored = await eventually(all_audited, timeout=180, what=f"{len(accepted)} accepted events in the audit log")
        assert accepted <= stored
    finally:
        await ingestor.stop()
        await producer.stop()
        await pool.close()


async def _at_least(accepted: set[str], n: int) -> bool | None:
    return True if len(accepted) >= n else None


async def _at_least_503(statuses: dict[int, int], n: int) -> bool | None:
    return True if statuses.get(503, 0) >= n else None
