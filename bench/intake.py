"""Intake benchmark: single-event requests/s, batch events/s, and time to 202 at a steady 1,000 events/s,
each next to raw aiokafka produce (acks=all) measured in the same run.

Starts its own local stack (real Kafka in .stack/bench-intake) and the intake as a process, once per
worker count (INTAKE_WORKERS; by default one, then one per core), loaded over real HTTP from this
process: single events and the steady rate by a lean keep-alive client (`bench/http_load.py`; its
CPU per request is shown beside the intake's), batches by aiohttp. Beside each rate, the CPU time
the intake's processes spent per request or event: on a shared machine it moves far less than the
rates do.

    .venv/bin/python -m bench.intake [--requests 20000] [--batches 60] [--rate 1000] [--seconds 10] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from bench.escalator import produce, triggers
from bench.figures import cpu_seconds, quantiles, worst_by_second
from bench.http_load import ConnectionPool, LoadResult, closed_loop, post_request
from bench.stack import fresh_stack
from services.stack import processes
from services.stack.signals import cancel_on_sigterm
from shared.kafka import ensure_topics
from shared.topics import INCIDENT_COMMANDS
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
STEADY_CONNECTIONS = 64  # more than are ever busy at once at the steady rate


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def event(service: str, i: int) -> dict[str, Any]:
    return {
        "event_action": "trigger",
        "service": service,
        "dedup_key": f"e{i}",
        "summary": f"CPU over 95% on web-{i % 50}",
        "severity": "critical",
        "source": f"web-{i % 50}.prod",
        "custom_details": {"cpu": 97.5, "region": "eu-west-1"},
    }


async def single(url: str, n: int, concurrency: int) -> LoadResult:
    """Requests/s of one-event POSTs with `concurrency` requests in flight (the lean client)."""
    service = f"single-{uuid.uuid4().hex[:6]}"
    requests = [post_request(f"{url}/v1/events", json.dumps(event(service, i)).encode()) for i in range(n)]
    return await closed_loop(url, requests, concurrency)


async def batches(url: str, count: int, size: int, concurrency: int) -> float:
    """Events/s of batch POSTs of `size` events."""
    service = f"batch-{uuid.uuid4().hex[:6]}"
    bodies = [
        json.dumps({"events": [event(service, b * size + i) for i in range(size)]}).encode() for b in range(count)
    ]
    queue = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for body in queue:
                headers = {"content-type": "application/json"}
                async with session.post(f"{url}/v1/events/batch", data=body, headers=headers) as response:
                    if response.status != 202:
                        raise RuntimeError(f"{response.status}: {await response.text()}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count * size / (time.perf_counter() - start)


async def open_loop(rate: float, count: int, one: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """Start `one(i)` every 1/rate s whatever the answers (an open-loop load generator); each call's
    time to completion in ms, as p50 / p99 / max, and the rate achieved."""
    sent_ms: list[tuple[float, float]] = []  # (seconds since the start when sent, latency ms)

    async def timed(i: int) -> None:
        sent = time.perf_counter()
        await one(i)
        sent_ms.append((sent - start, (time.perf_counter() - sent) * 1000))

    start = time.perf_counter()
    tasks = []
    for i in range(count):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)  # the schedule of an open-loop load generator
        tasks.append(asyncio.create_task(timed(i)))
    await asyncio.gather(*tasks)
    achieved = count / (time.perf_counter() - start)
    return {
        "rate": rate,
        "achieved_per_s": achieved,
        **quantiles(ms for _, ms in sent_ms),
        "max_ms_by_second": worst_by_second(sent_ms),  # where in time the tail is
    }


async def steady(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """One request every 1/rate s; time from send to 202 (the lean client, a pool of connections)."""
    service = f"steady-{uuid.uuid4().hex[:6]}"
    count = int(rate * seconds)
    requests = [post_request(f"{url}/v1/events", json.dumps(event(service, i)).encode()) for i in range(count)]
    async with ConnectionPool(url, STEADY_CONNECTIONS) as pool:

        async def one(i: int) -> None:
            await pool.send(requests[i])

        return await open_loop(rate, count, one)


async def raw_steady(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """The latency baseline: one record every 1/rate s with a plain producer (acks=all, idempotent,
    linger 0 like the intake's); time from `send` to Kafka's acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
    await producer.start()
    envelopes = triggers("raw-steady", int(rate * seconds), "s")
    try:

        async def one(i: int) -> None:
            env = envelopes[i]
            await (await producer.send(INCIDENT_COMMANDS, env.to_json(), key=env.incident_key.encode()))

        return await open_loop(rate, len(envelopes), one)
    finally:
        await producer.stop()


async def measured(pid: int, work: Awaitable[float], count: int) -> tuple[float, float]:
    """Run `work` (rate per second); return the rate and the intake's CPU microseconds per unit."""
    before = cpu_seconds(pid)
    rate = await work
    return rate, (cpu_seconds(pid) - before) / count * 1e6


async def run_intake(bootstrap: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """Start an intake with `workers` processes, measure its three figures, stop it."""
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        root = Path(tmp)
        (root / "config").mkdir()
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ESCALATION_CONFIG_DIR": str(root / "config"),
            "INTAKE_PORT": str(port),
            "INTAKE_RATE_PER_SECOND": "1000000000",
            "INTAKE_RATE_BURST": "1000000000",
            "LOG_LEVEL": "WARNING",
            "INTAKE_WORKERS": str(workers),
        }
        proc = processes.ServiceProcess("intake", root, port)
        pid = processes.start(proc, env)
        out: dict[str, Any] = {"workers": workers}
        try:
            processes.wait_healthy(proc, timeout=120)
            url = f"http://127.0.0.1:{port}"
            await single(url, 1000 * workers, args.concurrency)  # warm-up: connections, every worker's producer
            await batches(url, 2 * workers, args.batch_size, 4)
            before = cpu_seconds(pid)
            load = await single(url, args.requests, args.concurrency)
            out["single_requests_per_s"], out["single_client_cpu_us"] = load.per_second, load.client_cpu_us
            out["single_cpu_us"] = (cpu_seconds(pid) - before) / args.requests * 1e6
            log(f"{workers} worker(s): single {out['single_requests_per_s']:,.0f} requests/s")
            events = args.batches * args.batch_size
            out["batch_events_per_s"], out["batch_cpu_us"] = await measured(
                pid, batches(url, args.batches, args.batch_size, 4), events
            )
            log(f"{workers} worker(s): batch {out['batch_events_per_s']:,.0f} events/s")
            out["steady"] = await steady(url, args.rate, args.seconds)
            log(f"{workers} worker(s): steady {out['steady']}")
        finally:
            processes.stop(proc)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=sorted({1, cpus}),
        help="INTAKE_WORKERS of the intake, one run each (default: 1 and one per core)",
    )
    args = parser.parse_args()
    cancel_on_sigterm()  # a SIGTERM (a timeout, kill) stops the stack and processes it started
    stack, bootstrap = fresh_stack("bench-intake", kafka_port=26092, postgres_port=24435)
    results: dict[str, Any] = {
        "machine": {"cpus": cpus, "python": sys.version.split()[0]},
        "at": datetime.now(UTC).isoformat(),
    }
    try:
        await ensure_topics(bootstrap, 8)
        results["raw_produce_per_s"] = await produce(bootstrap, triggers("raw", args.requests, "r"))
        log(f"raw produce: {results['raw_produce_per_s']:,.0f}/s")
        results["raw_steady"] = await raw_steady(bootstrap, args.rate, args.seconds)
        log(f"raw produce at {args.rate:,.0f}/s: {results['raw_steady']}")
        results["runs"] = [await run_intake(bootstrap, workers, args) for workers in args.workers]
    finally:
        stack.down()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "intake.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r: dict[str, Any]) -> str:
    raw, rs = r["raw_produce_per_s"], r["raw_steady"]
    lines = [
        "| intake workers | figure | measured | intake CPU | baseline (same run) | target |",
        "|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        w, s = run["workers"], run["steady"]
        lines += [
            f"| {w} | single-event requests/s (64 in flight) | {run['single_requests_per_s']:,.0f} "
            f"| {run['single_cpu_us']:.0f} us/request (the load client's: {run['single_client_cpu_us']:.0f}) "
            f"| raw aiokafka produce (acks=all) {raw:,.0f} msg/s (ratio {run['single_requests_per_s'] / raw:.2f}) "
            "| 5,000 |",
            f"| {w} | batch events/s (1,000 per request) | {run['batch_events_per_s']:,.0f} "
            f"| {run['batch_cpu_us']:.0f} us/event | same raw produce (ratio {run['batch_events_per_s'] / raw:.2f}) "
            "| 30,000 |",
            f"| {w} | time to 202 at {s['rate']:,.0f} events/s (achieved {s['achieved_per_s']:,.0f}), p50 / p99 / max "
            f"| {s['p50_ms']:.1f} / {s['p99_ms']:.1f} / {s['max_ms']:.1f} ms | - "
            f"| raw produce to acknowledgement at the same rate {rs['p50_ms']:.1f} / {rs['p99_ms']:.1f} / "
            f"{rs['max_ms']:.1f} ms | p99 < 20 ms |",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        sys.exit("stopped by SIGTERM; the processes it started are stopped")
