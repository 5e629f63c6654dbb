"""What this machine does without the product, measured in the same run: the floor of each figure."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.kafka import partitions_of

RECORD = b'{"type":"incident.trigger","payload":{"summary":"' + b"x" * 400 + b'"}}'


async def kafka_produce(bootstrap: str, topic: str, n: int) -> float:
    """Messages/s of one idempotent producer with acks=all (the intake's settings), all in flight."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        # One acknowledged write per partition first: a just-created topic's leaders are elected.
        warm = [await producer.send(topic, RECORD, partition=p) for p in sorted(await producer.partitions_for(topic))]
        await asyncio.gather(*warm)
        start = time.perf_counter()
        futures = [await producer.send(topic, RECORD, key=str(i % 512).encode()) for i in range(n)]
        await asyncio.gather(*futures)
        return n / (time.perf_counter() - start)
    finally:
        await producer.stop()


async def kafka_consume(bootstrap: str, topic: str, n: int) -> float:
    """Messages/s of one consumer reading `n` messages of `topic` from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = await partitions_of(consumer, topic)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        read = 0
        start = time.perf_counter()
        while read < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            read += sum(len(r) for r in batches.values())
        return read / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def postgres_copy(dsn: str, n: int) -> float:
    """Rows/s of a bare COPY of audit-row-sized records into an unlogged scratch table."""
    conn = await asyncpg.connect(dsn)
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE UNLOGGED TABLE {table} (id uuid, kind text, at timestamptz, payload jsonb)")
        at = datetime.now(UTC)
        rows = [(uuid.uuid4(), "incident.trigger", at, '{"summary": "' + "x" * 400 + '"}') for _ in range(n)]
        start = time.perf_counter()
        await conn.copy_records_to_table(table, records=rows)
        return n / (time.perf_counter() - start)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def http_posts(url: str, n: int, concurrency: int = 64) -> float:
    """POSTs/s of a plain aiohttp client to the run's receiver."""
    body = b'{"summary": "raw", "severity": "critical"}'
    counter = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in counter:
                async with session.post(url, data=body, headers={"Idempotency-Key": f"raw-{i}"}) as response:
                    await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)
