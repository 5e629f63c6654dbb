"""Audit benchmark: rows/s written with hashing, next to raw COPY; Kafka-to-PostgreSQL ingestion;
time to export and to verify a large history.

Starts its own local stack (real Kafka and PostgreSQL in .stack/bench-audit) and prints each figure
beside a raw baseline measured in the same run:

    .venv/bin/python -m bench.audit [--rows 200000] [--writers 2] [--ingest 100000] [--history 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.stack import fresh_stack
from services.audit.consumer import AuditIngestor
from services.audit.migrate import migrate
from services.audit.rows import Record
from services.audit.store import AuditStore
from services.audit.verify import verify_items
from services.stack.signals import cancel_on_sigterm
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.kafka import Publisher, ensure_topics, make_producer
from shared.topics import ESCALATION_EVENTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BATCH = 2000


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def step_events(n: int, service: str) -> list[Envelope]:
    """Escalation steps as the escalator emits them (about 700 bytes of JSON each)."""
    out = []
    for i in range(n):
        key = f"{service}/dedup-{i}"
        payload = ev.EscalationStepReached(
            step_id=uuid.uuid4(),
            level=1 + i % 3,
            cycle=0,
            level_name="infrastructure on call",
            kind="functional",
            reason="timeout",
            targets=[ev.Target(type="webhook", url="https://hooks.example.com/infra", name="infrastructure")],
            service=service,
            summary=f"disk full on db-{i % 97}",
            severity=ev.Severity.CRITICAL,
            priority="P1",
            policy_id="server-outage",
        )
        out.append(
            new_envelope(
                ev.ESCALATION_STEP_REACHED,
                payload,
                incident_key=key,
                occurred_at=datetime.now(UTC),
                incident_id=uuid.uuid4(),
            )
        )
    return out


async def fresh_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await conn.close()
    return url


async def _write(kind: str, url: str, count: int, partitions: list[int], barrier: Any) -> tuple[float, float]:
    """One writer: `raw` copies plain rows, `store` goes through AuditStore.write_batch as the ingestor
    does (per partition a batch with its offset: dedupe checks, hashing, COPY, heads and offsets in one
    transaction; its partitions concurrently). Returns (start, end) wall-clock instants."""
    envelopes = step_events(count, f"bench-{kind}")
    pool = await asyncpg.create_pool(url, min_size=len(partitions), max_size=len(partitions))
    per_partition = [
        [Record(ESCALATION_EVENTS, p, i, e) for i, e in enumerate(envelopes[k :: len(partitions)])]
        for k, p in enumerate(partitions)
    ]
    raw_rows = [(e.event_id, e.type, e.occurred_at, e.incident_key, json.dumps(e.payload)) for e in envelopes]
    store = AuditStore(pool)

    async def raw_batch(rows: list[tuple[Any, ...]]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("raw_log", records=rows)

    await asyncio.to_thread(barrier.wait)  # every writer starts together
    start = time.time()
    if kind == "raw":
        for i in range(0, len(raw_rows), BATCH * len(partitions)):
            chunk = raw_rows[i : i + BATCH * len(partitions)]
            await asyncio.gather(*(raw_batch(chunk[j :: len(partitions)]) for j in range(len(partitions))))
    else:
        for i in range(0, len(per_partition[0]), BATCH):
            chunks = [records[i : i + BATCH] for records in per_partition]
            await asyncio.gather(
                *(
                    store.write_batch("bench", c, {(ESCALATION_EVENTS, c[-1].partition): c[-1].offset + 1})
                    for c in chunks
                    if c
                )
            )
    end = time.time()
    await pool.close()
    return start, end


def _writer_process(kind: str, url: str, count: int, partitions: list[int], barrier: Any, out: Any) -> None:
    out.put(asyncio.run(_write(kind, url, count, partitions, barrier)))


def writers(kind: str, url: str, rows: int, processes: int, partitions: int = 8) -> float:
    """Rows/s of `processes` writer processes together, each on its own share of the partitions."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    shares = [list(range(partitions))[k::processes] for k in range(processes)]
    procs = [
        ctx.Process(target=_writer_process, args=(kind, url, rows // processes, share, barrier, out))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    spans: list[tuple[float, float]] = [out.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join()
    return (rows // processes) * processes / (max(e for _, e in spans) - min(s for s, _ in spans))


async def raw_table(url: str) -> str:
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE raw_log (event_id uuid, type text, occurred_at timestamptz, incident_key text, payload json)"
    )
    await conn.close()
    return url


async def ingest(bootstrap: str, url: str, envelopes: list[Envelope]) -> dict[str, float]:
    """Kafka to PostgreSQL: produce first, then time the ingestor draining them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    futures = [
        await producer.send(ESCALATION_EVENTS, e.to_json(), key=e.incident_key.encode(), headers=e.kafka_headers())
        for e in envelopes
    ]
    await asyncio.gather(*futures)
    await producer.stop()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    publisher_producer = make_producer(bootstrap, "bench-audit")
    await publisher_producer.start()
    ingestor = AuditIngestor(
        bootstrap, AuditStore(pool), Publisher(publisher_producer), group=f"bench-{uuid.uuid4().hex}"
    )
    await ingestor.start()
    n = len(envelopes)
    first: tuple[float, int] | None = None  # from the first stored rows on: the group join is not ingestion
    while True:
        count = await pool.fetchval("SELECT count(*) FROM audit_log")
        if first is None and count > 0:
            first = (time.perf_counter(), count)
        if count >= n:
            break
        await asyncio.sleep(0.1)  # a benchmark polling another component's table for progress
    assert first is not None
    elapsed = time.perf_counter() - first[0]
    n -= first[1]
    await ingestor.stop()
    await publisher_producer.stop()
    await pool.close()
    return {"ingest_rows_per_s": n / elapsed, "ingest_rows": len(envelopes)}


async def history(url: str, n: int) -> dict[str, float]:
    """Write n rows, then time a full JSONL export and a full verification."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    store = AuditStore(pool)
    written = 0
    start = time.perf_counter()
    while written < n:
        chunk = step_events(min(20_000, n - written), "bench-history")
        records = [Record(ESCALATION_EVENTS, (written + i) % 8, written + i, e) for i, e in enumerate(chunk)]
        for i in range(0, len(records), BATCH):
            await store.write_batch("bench-history", records[i : i + BATCH], {})
        written += len(chunk)
        log(f"history: {written:,} rows")
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    size = 0
    async for row in store.export(batch=5000):
        size += len(json.dumps(row, separators=(",", ":"))) + 1
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    report = await verify_items(store.evidence(), None)
    verify_s = time.perf_counter() - start
    await pool.close()
    if not report.ok:
        raise RuntimeError(report.text())
    return {
        "history_rows": n,
        "history_write_s": write_s,
        "export_jsonl_s": export_s,
        "export_jsonl_mib": size / 2**20,
        "verify_s": verify_s,
        "verified_rows": report.rows,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=2, help="writer processes (one per core)")
    parser.add_argument("--ingest", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--skip", default="", help="comma-separated: write,ingest,history")
    args = parser.parse_args()
    cancel_on_sigterm()  # a SIGTERM (a timeout, kill) stops the stack and processes it started
    skip = set(filter(None, args.skip.split(",")))
    stack, bootstrap = fresh_stack("bench-audit", kafka_port=27092, postgres_port=24433)
    admin = stack.postgres.url
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "at": datetime.now(UTC).isoformat(),
    }
    try:
        if "write" not in skip:
            raw_url = await raw_table(await fresh_database(admin, "bench_raw"))
            store_url = await fresh_database(admin, "bench_store")
            raw = await asyncio.to_thread(writers, "raw", raw_url, args.rows, args.writers)
            hashed = await asyncio.to_thread(writers, "store", store_url, args.rows, args.writers)
            results["write"] = {
                "rows": args.rows,
                "writers": args.writers,
                "raw_copy_per_s": raw,
                "store_per_s": hashed,
                "ratio": hashed / raw,
            }
            log(f"write: {results['write']}")
        if "ingest" not in skip:
            await ensure_topics(bootstrap, 8)
            envelopes = step_events(args.ingest, "bench-ingest")
            results["ingest"] = await ingest(bootstrap, await fresh_database(admin, "bench_ingest"), envelopes)
            log(f"ingest: {results['ingest']}")
        if "history" not in skip:
            results["history"] = await history(await fresh_database(admin, "bench_history"), args.history)
            log(f"history: {results['history']}")
    finally:
        stack.down()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r: dict[str, Any]) -> str:
    rows = ["| figure | measured | baseline (same run) | target |", "|---|---|---|---|"]
    if "write" in r:
        w = r["write"]
        rows.append(
            f"| rows/s written with dedupe, SHA-256 chain, COPY, heads and offsets ({w['rows']:,} rows, "
            f"{w['writers']} writer processes, batches of {BATCH} per partition) | {w['store_per_s']:,.0f} | raw "
            f"copy_records_to_table, same writers and batches, {w['raw_copy_per_s']:,.0f}/s "
            f"(ratio {w['ratio']:.2f}) | 30,000 |"
        )
    if "ingest" in r:
        i = r["ingest"]
        rows.append(
            f"| Kafka to PostgreSQL ingestion ({i['ingest_rows']:,} rows) | {i['ingest_rows_per_s']:,.0f} rows/s "
            "| - | - |"
        )
    if "history" in r:
        h = r["history"]
        rows.append(
            f"| export {h['history_rows']:,} rows as JSONL ({h['export_jsonl_mib']:,.0f} MiB) "
            f"| {h['export_jsonl_s']:.1f} s | - | - |"
        )
        rows.append(f"| verify {h['verified_rows']:,} rows | {h['verify_s']:.1f} s | - | - |")
    return "\n".join(rows)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        sys.exit("stopped by SIGTERM; the processes it started are stopped")
