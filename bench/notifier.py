"""Notifier benchmark: deliveries/s to a local webhook receiver, and time from escalation event to
delivery at a steady 500 steps/s, next to raw HTTP POSTs to the same receiver in the same run.

Starts its own Kafka (.stack/bench-notifier), the notifier as a process, and a real webhook
receiver in this process; steps are written to escalations.events as the escalator would:

    .venv/bin/python -m bench.notifier [--steps 5000] [--rate 500] [--warmup 30] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.figures import cpu_seconds, quantiles, worst_by_second
from bench.stack import fresh_stack
from services.stack import processes
from services.stack.signals import cancel_on_sigterm
from services.webhook_receiver import WebhookReceiver
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.heap import settle_heap
from shared.kafka import ensure_topics, partitions_of
from shared.topics import ESCALATION_EVENTS
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def step(url: str, tag: str, i: int) -> Envelope:
    incident = uuid.uuid4()
    payload = ev.EscalationStepReached(
        step_id=uuid.uuid4(),
        level=1,
        cycle=0,
        level_name="infrastructure",
        kind="functional",
        reason="timeout",
        targets=[ev.Target(type="webhook", url=url)],
        service="bench",
        summary=f"step {i}",
        severity=ev.Severity.CRITICAL,
        priority="P1",
        policy_id="p",
        due_at=datetime.now(UTC),
    )
    return new_envelope(
        ev.ESCALATION_STEP_REACHED,
        payload,
        incident_key=f"bench/{tag}{i}",
        occurred_at=datetime.now(UTC),
        incident_id=incident,
    )


async def raw_posts(url: str, n: int, concurrency: int) -> float:
    """POSTs/s of a plain aiohttp client to the receiver: the baseline."""
    body = json.dumps({"summary": "raw", "severity": "critical"}).encode()
    counter = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for i in counter:
                async with session.post(url, data=body, headers={"Idempotency-Key": str(i)}) as response:
                    await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


async def arrivals(receiver: WebhookReceiver, ids: set[str], timeout: float) -> dict[str, float]:
    """Wait until every incident id in `ids` was delivered; return id -> first arrival (loop time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: dict[str, float] = {}
    read = 0
    while len(seen) < len(ids) and loop.time() < deadline:
        for r in receiver.received[read:]:
            incident = str(r.body.get("incident_id"))
            if incident in ids:
                seen.setdefault(incident, r.at)
        read = len(receiver.received)
        if len(seen) < len(ids):
            with contextlib.suppress(TimeoutError):
                await receiver.wait_for(read + 1, timeout=max(0.01, deadline - loop.time()))
    return seen


class RawConsumer:
    """The baseline of the latency: a plain aiokafka consumer (no group, default fetch settings) reading
    escalations.events in this process beside the notifier; when it saw each key (loop time)."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        tps = await partitions_of(self._consumer, ESCALATION_EVENTS)
        self._consumer.assign(tps)
        for tp, end in (await self._consumer.end_offsets(tps)).items():  # positioned before the first step
            self._consumer.seek(tp, end)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = loop.time()
            for records in batches.values():
                for record in records:
                    self.seen.setdefault((record.key or b"").decode(), now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


async def steady(
    producer: AIOKafkaProducer,
    receiver: WebhookReceiver,
    raw: RawConsumer,
    url: str,
    pid: int,
    rate: float,
    seconds: float,
    tag: str,
) -> dict[str, Any]:
    """Write steps at `rate` for `seconds`; the latency from each write to its delivery, beside the
    raw consumer's latency for the same steps, and the notifier's CPU per delivery."""
    # This process (receiver, raw consumer, generator) is the instrument: a full collection over
    # the requests received before would pause it and show up in both latencies.
    receiver.received.clear()
    settle_heap()
    loop = asyncio.get_running_loop()
    sent: dict[str, float] = {}
    sent_key: dict[str, float] = {}
    total = int(rate * seconds)
    cpu_before = cpu_seconds(pid)
    start = loop.time()
    for i in range(total):
        wait = start + i / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)  # pacing the generator, not waiting for a result
        s = step(url, tag, i)
        sent[str(s.incident_id)] = sent_key[s.incident_key] = loop.time()
        await producer.send(ESCALATION_EVENTS, s.to_json(), key=s.incident_key.encode())
    await producer.flush()
    seen = await arrivals(receiver, set(sent), timeout=120)
    cpu = (cpu_seconds(pid) - cpu_before) / max(1, len(seen)) * 1e6
    sent_ms = [(sent[i] - start, (arrived - sent[i]) * 1000) for i, arrived in seen.items()]
    return {
        "rate": rate,
        "seconds": seconds,
        "delivered": len(seen),
        "sent": total,
        **quantiles(ms for _, ms in sent_ms),
        "cpu_us_per_delivery": cpu,
        # Baseline: the same steps read by a plain consumer in this process (write to read).
        **quantiles(((raw.seen[k] - sent_key[k]) * 1000 for k in sent_key if k in raw.seen), "raw_consume_"),
        "max_ms_by_second": worst_by_second(sent_ms),  # where in time the tail is
    }


async def notifier_idle(bootstrap: str, timeout: float) -> None:
    """Wait until the notifier's group has committed every escalation event written so far."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(ESCALATION_EVENTS, p) for p in consumer.partitions_for_topic(ESCALATION_EVENTS) or ()]
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets("notifier")
            if all(tp in committed and committed[tp].offset >= ends[tp] for tp in tps):
                return
            await asyncio.sleep(0.2)  # commits are periodic: nothing to await
        log("notifier still behind after the burst; measuring anyway")
    finally:
        await consumer.stop()
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20, help="the measured steady phase")
    parser.add_argument("--warmup", type=float, default=30, help="a steady phase before it, at the same rate")
    args = parser.parse_args()
    cancel_on_sigterm()  # a SIGTERM (a timeout, kill) stops the stack and processes it started

    stack, bootstrap = fresh_stack("bench-notifier", kafka_port=27192, postgres_port=24535)
    receiver = WebhookReceiver()
    await receiver.start()
    url = receiver.url("bench")
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "at": datetime.now(UTC).isoformat()}
    try:
        await ensure_topics(bootstrap, 8)
        results["raw_posts_per_s"] = await raw_posts(url, args.steps, 64)
        log(f"raw POSTs: {results['raw_posts_per_s']:,.0f}/s")
        receiver.received.clear()
        with tempfile.TemporaryDirectory(prefix="bench-notifier-") as tmp:
            root = Path(tmp)
            (root / "config").mkdir()
            port = free_port()
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "ESCALATION_CONFIG_DIR": str(root / "config"),
                "NOTIFIER_PORT": str(port),
                "LOG_LEVEL": "WARNING",
                # One receiver stands for many targets: no per-address or per-channel limit here.
                "NOTIFIER_TARGET_RATE_PER_SECOND": "1000000000",
                "NOTIFIER_CHANNEL_RATE_PER_SECOND": "1000000000",
            }
            proc = processes.ServiceProcess("notifier", root, port)
            processes.start(proc, env)
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
            await producer.start()
            try:
                processes.wait_healthy(proc, timeout=120)
                loop = asyncio.get_running_loop()

                # Throughput: a backlog of steps, from the first write to the last delivery.
                burst = [step(url, "t", i) for i in range(args.steps)]
                ids = {str(s.incident_id) for s in burst}
                pid = processes.read_pid(proc.pid_file)
                assert pid is not None
                cpu_before = cpu_seconds(pid)
                start = loop.time()
                for s in burst:
                    await producer.send(ESCALATION_EVENTS, s.to_json(), key=s.incident_key.encode())
                await producer.flush()
                seen = await arrivals(receiver, ids, timeout=600)
                results["deliveries_per_s"] = len(seen) / (max(seen.values()) - start)
                # CPU per delivery moves far less than rates on a shared host.
                results["burst_cpu_us_per_delivery"] = (cpu_seconds(pid) - cpu_before) / len(seen) * 1e6
                log(f"deliveries: {results['deliveries_per_s']:,.0f}/s ({len(seen)} of {len(ids)})")

                # The burst's results and commits finish first: the steady phase starts on an idle notifier.
                await notifier_idle(bootstrap, timeout=120)

                # Latency at a steady rate: from the step's write to its delivery. A first phase at the
                # same rate warms the broker up (a fresh JVM compiles for its first 20-30 s: the
                # broker's CPU falls from about 90 % of a core to 30 % at 500/s, and the worst latency
                # of each second with it); its figures are reported, not measured against the target.
                raw = RawConsumer(bootstrap)
                await raw.start()
                try:
                    results["warmup"] = await steady(producer, receiver, raw, url, pid, args.rate, args.warmup, "w")
                    log(f"warm-up: {results['warmup']}")
                    results["steady"] = await steady(producer, receiver, raw, url, pid, args.rate, args.seconds, "s")
                finally:
                    await raw.stop()
                log(f"steady: {results['steady']}")
            finally:
                await producer.stop()
                processes.stop(proc)
    finally:
        await receiver.stop()
        stack.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "notifier.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r: dict[str, Any]) -> str:
    raw, s, w = r["raw_posts_per_s"], r["steady"], r["warmup"]
    return "\n".join(
        [
            "| figure | measured | baseline (same run) | target |",
            "|---|---|---|---|",
            f"| deliveries/s to a local webhook receiver (one notifier) | {r['deliveries_per_s']:,.0f} "
            f"| raw aiohttp POSTs to the same receiver {raw:,.0f}/s (ratio {r['deliveries_per_s'] / raw:.2f}) "
            "| 5,000 |",
            f"| notifier CPU per delivery (burst / steady) | {r['burst_cpu_us_per_delivery']:,.0f} / "
            f"{s['cpu_us_per_delivery']:,.0f} us | - | - |",
            f"| escalation event to delivery at {s['rate']:,.0f}/s ({s['delivered']} of {s['sent']}), "
            f"p50 / p99 / max | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} / {s['max_ms']:.1f} ms "
            f"| raw aiokafka produce to consume of the same steps, p50 / p99 {s['raw_consume_p50_ms']:.1f} / "
            f"{s['raw_consume_p99_ms']:.1f} ms | p99 < 50 ms |",
            f"| the same in the {w['seconds']:.0f} s warm-up before it (a fresh broker), p50 / p99 / max "
            f"| {w['p50_ms']:.1f} / {w['p99_ms']:.1f} / {w['max_ms']:.1f} ms | raw p50 / p99 "
            f"{w['raw_consume_p50_ms']:.1f} / {w['raw_consume_p99_ms']:.1f} ms | - |",
        ]
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        sys.exit("stopped by SIGTERM; the processes it started are stopped")
