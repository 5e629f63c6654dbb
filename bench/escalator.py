"""Escalator benchmark: commands/s per worker, timer lateness, memory per open incident, restart catch-up.

Starts its own local stack (real Kafka and PostgreSQL in .stack/bench) and escalator workers as
processes, and prints each figure beside a raw baseline measured in the same run:

    .venv/bin/python -m bench.escalator [--commands 20000] [--timer-rates 1000,500,250] [--timer-seconds 10]
                                         [--memory-incidents 1000000] [--restart-incidents 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.figures import quantiles
from bench.stack import fresh_stack
from services.escalator.config import load_catalog
from services.escalator.core.simulator import Simulator
from services.stack import processes
from services.stack.signals import cancel_on_sigterm
from shared import events as ev
from shared.envelope import decode, new_envelope
from shared.kafka import ensure_topics
from shared.topics import INCIDENT_COMMANDS
from tests.integration.escalator_harness import EventReader
from tests.support import free_port, one_level_policy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- raw baselines ---------------------------------------------------------------------------------


async def produce(bootstrap: str, envelopes: list[Any], rate: float | None = None) -> float:
    """Write envelopes keyed by incident (acks=all, idempotent); return messages/s."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    start = time.perf_counter()
    try:
        futures = []
        for i, env in enumerate(envelopes):
            if rate is not None:
                wait = start + i / rate - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            futures.append(await producer.send(INCIDENT_COMMANDS, env.to_json(), key=env.incident_key.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(envelopes) / (time.perf_counter() - start)


async def raw_consume(bootstrap: str, topic: str, count: int) -> float:
    """Read `count` messages from the start of `topic` with a plain consumer; return messages/s."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, start = 0, None
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    decode(record.value)  # parse as the escalator does
                    seen += 1
                    start = start or time.perf_counter()
    finally:
        await consumer.stop()
    assert start is not None
    return seen / (time.perf_counter() - start)


def opened_at(reader: EventReader) -> dict[str, float]:
    """When the escalator opened each incident (its decision time)."""
    return {k: _ts(v[0]["_occurred_at"]) for k, v in reader.by_type[ev.INCIDENT_OPENED].items() if v}


def step_lateness(reader: EventReader) -> dict[str, float]:
    """Seconds from each first step's deadline to its decision."""
    out = {}
    for key, steps in reader.by_type[ev.ESCALATION_STEP_REACHED].items():
        if steps:
            out[key] = _ts(steps[0]["_occurred_at"]) - datetime.fromisoformat(str(steps[0]["due_at"])).timestamp()
    return out


def _ts(value: object) -> float:
    assert isinstance(value, datetime)
    return value.timestamp()


def triggers(service: str, count: int, tag: str) -> list[Any]:
    now = datetime.now(UTC)
    return [
        new_envelope(
            ev.TRIGGER,
            ev.Trigger(service=service, dedup_key=f"{tag}{i}", summary="bench"),
            incident_key=f"{service}/{tag}{i}",
            occurred_at=now,
        )
        for i in range(count)
    ]


# --- workers ---------------------------------------------------------------------------------------


class Worker:
    def __init__(self, root: Path, bootstrap: str, service: str, delay: float, app_id: str) -> None:
        config = root / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "bench.yaml").write_text(one_level_policy(service, delay))
        port = free_port()
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "ESCALATION_CONFIG_DIR": str(config),
            "ESCALATOR_APP_ID": app_id,
            "ESCALATOR_DATA_DIR": str(root / "data"),
            "ESCALATOR_PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
        self.proc = processes.ServiceProcess("escalator", root, port)

    def start(self) -> None:
        processes.start(self.proc, self.env)
        processes.wait_healthy(self.proc, timeout=300)

    def stop(self) -> None:
        processes.stop(self.proc, timeout=60)

    def rss_mib(self) -> float:
        pid = processes.read_pid(self.proc.pid_file)
        if pid is None:
            return float("nan")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


# --- figures ---------------------------------------------------------------------------------------


def bench_core(n: int) -> dict[str, float]:
    """decide() through the simulator: one trigger opening one incident per command, no Kafka."""
    catalog = load_catalog(ROOT / "examples" / "config")
    sim = Simulator(catalog, datetime(2026, 1, 5, 9, tzinfo=UTC))
    start = time.perf_counter()
    for i in range(n):
        sim.send(ev.TRIGGER, ev.Trigger(service="web-servers", dedup_key=f"c{i}", summary="s"))
    elapsed = time.perf_counter() - start
    return {"core_commands_per_s": n / elapsed}


async def bench_throughput(bootstrap: str, root: Path, n: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    service = f"bench-tp-{run}"
    await ensure_topics(bootstrap, 8)
    envs = triggers(service, n, "t")
    produce_rate = await produce(bootstrap, envs)
    baseline = await raw_consume(bootstrap, INCIDENT_COMMANDS, n)
    floor = await faust_floor(bootstrap, root / "floor", n, f"bench-floor-{run}")
    events = EventReader(bootstrap, service + "/")
    await events.start()
    worker = Worker(root / "tp", bootstrap, service, 3600, f"bench-tp-{run}")
    started = time.perf_counter()
    worker.start()  # the group starts at the earliest offset: every trigger is waiting
    ready = time.perf_counter()
    await events.wait(lambda: len(events.keys(ev.INCIDENT_OPENED)) >= n, timeout=1800)
    opened = opened_at(events)
    done, first = max(opened.values()), min(opened.values())
    rate = n / (done - first) if done > first else float("nan")
    rss = worker.rss_mib()
    worker.stop()
    await events.stop()
    log(f"throughput: worker ready after {ready - started:.1f}s")
    return {
        "commands": n,
        "escalator_commands_per_s": rate,
        "raw_consume_per_s": baseline,
        "raw_produce_per_s": produce_rate,
        "ratio_to_raw_consume": rate / baseline,
        "faust_floor_per_s": floor,
        "ratio_to_faust_floor": rate / floor,
        "escalator_peak_rss_mib": rss,
    }


def start_floor(bootstrap: str, root: Path, n: int, app_id: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Launch bench/faust_floor.py as its own process; it writes its result to the returned path."""
    root.mkdir(parents=True, exist_ok=True)
    out = root / "floor.json"
    env = {
        **os.environ,
        "FLOOR_BOOTSTRAP": bootstrap,
        "FLOOR_APP_ID": app_id,
        "FLOOR_COUNT": str(n),
        "FLOOR_OUT": str(out),
        "FLOOR_DATA_DIR": str(root / "data"),
    }
    return subprocess.Popen([sys.executable, "-m", "bench.faust_floor"], env=env, cwd=ROOT), out


async def faust_floor(bootstrap: str, root: Path, n: int, app_id: str) -> float:
    """Commands/s of the cheapest Faust worker doing the same Kafka work (bench/faust_floor.py)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{app_id}-events", num_partitions=8, replication_factor=1)])
    finally:
        await admin.close()
    proc, out = start_floor(bootstrap, root, n, app_id)
    try:
        deadline = time.monotonic() + 1800
        while not out.exists():  # a subprocess's result file: nothing to await but the file
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"faust floor worker ended or stalled (exit {proc.returncode})")
            await asyncio.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    result = json.loads(out.read_text())
    rate = float(result["count"]) / (float(result["last"]) - float(result["first"]))
    log(f"faust floor: {rate:,.0f} commands/s")
    return rate


async def bench_lateness(bootstrap: str, root: Path, rate: float, seconds: float) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    service = f"bench-lt-{run}"
    n = int(rate * seconds)
    delay = seconds + 15
    events = EventReader(bootstrap, service + "/")
    await events.start()
    worker = Worker(root / "lt", bootstrap, service, delay, f"bench-lt-{run}")
    worker.start()
    await produce(bootstrap, triggers(service, n, "l"), rate=rate)
    await events.wait(lambda: len(events.keys(ev.ESCALATION_STEP_REACHED)) >= n, timeout=delay + seconds + 600)
    late = [max(0.0, s) * 1000 for s in step_lateness(events).values()]
    worker.stop()
    await events.stop()
    return {"due_timers": n, "timers_per_s": rate, **quantiles(late, "lateness_")}


def bench_memory(n: int) -> dict[str, float]:
    """RSS of a worker's in-memory state for n open incidents: table values + timer index."""
    code = f"""
import resource, sys
from datetime import UTC, datetime
from pathlib import Path
from services.escalator.config import load_catalog
from services.escalator.core.simulator import Simulator
from services.escalator.state_codec import StateCodec
from services.escalator.timer_index import TimerIndex
from shared import events as ev

def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20

catalog = load_catalog(Path({str(ROOT / "examples" / "config")!r}))
codec, index, table = StateCodec(), TimerIndex(), {{}}
sim = Simulator(catalog, datetime(2026, 1, 5, 9, tzinfo=UTC))
sim.send(ev.TRIGGER, ev.Trigger(service="web-servers", dedup_key="m", summary="disk full on db1"))
template = sim.states["web-servers/m"]
raw = codec.encode(0, 0, template)
before = rss()
for i in range({n}):
    key = f"web-servers/m{{i}}"
    # Each entry as the worker stores it: the encoded state with its own key, id and offset.
    value = raw.replace(b'"o":0', b'"o":' + str(i).encode()).replace(b'"web-servers/m"', ('"' + key + '"').encode())
    table[key] = value
    index.arm(key, template.timer.due_at.timestamp() + i, template.timer.token, i % 8)
print(rss() - before, sum(len(v) for v in table.values()) / len(table))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    mib, avg = (float(x) for x in out.stdout.split())
    return {
        "open_incidents": n,
        "state_rss_mib": mib,
        "bytes_per_incident_value": avg,
        "rss_per_incident_bytes": mib * 2**20 / n,
    }


async def bench_restart(bootstrap: str, root: Path, n: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    service = f"bench-rs-{run}"
    delay = 60.0
    events = EventReader(bootstrap, service + "/")
    await events.start()
    worker = Worker(root / "rs", bootstrap, service, delay, f"bench-rs-{run}")
    worker.start()
    await produce(bootstrap, triggers(service, n, "r"))
    await events.wait(lambda: len(events.keys(ev.INCIDENT_OPENED)) >= n, timeout=3600)
    worker.stop()
    latest_due = max(opened_at(events).values()) - time.time() + time.perf_counter() + delay
    # Every deadline passes while no worker runs: the restart finds them all overdue.
    await asyncio.sleep(max(0.0, latest_due + 1 - time.perf_counter()))
    restart = time.perf_counter()
    worker.start()
    ready = time.perf_counter()
    await events.wait(lambda: len(events.keys(ev.ESCALATION_STEP_REACHED)) >= n, timeout=3600)
    done = time.perf_counter()
    worker.stop()
    await events.stop()
    return {"open_incidents": n, "restart_to_ready_s": ready - restart, "restart_to_all_fired_s": done - restart}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument(
        "--timer-rates", default="1000,500,250", help="comma-separated due timers/s, each measured on its own"
    )
    parser.add_argument("--timer-seconds", type=float, default=10)
    parser.add_argument("--memory-incidents", type=int, default=1_000_000)
    parser.add_argument("--restart-incidents", type=int, default=100_000)
    parser.add_argument("--skip", default="", help="comma-separated: core,throughput,lateness,memory,restart")
    args = parser.parse_args()
    cancel_on_sigterm()  # a SIGTERM (a timeout, kill) stops the stack and processes it started
    skip = set(filter(None, args.skip.split(",")))
    stack, bootstrap = fresh_stack("bench", kafka_port=28092, postgres_port=24432)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "at": datetime.now(UTC).isoformat(),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-escalator-") as tmp:
            root = Path(tmp)
            if "core" not in skip:
                results["core"] = bench_core(20_000)
                log(f"core: {results['core']}")
            if "throughput" not in skip:
                results["throughput"] = await bench_throughput(bootstrap, root, args.commands)
                log(f"throughput: {results['throughput']}")
            if "lateness" not in skip:
                results["lateness"] = []
                for rate in (float(r) for r in args.timer_rates.split(",")):
                    results["lateness"].append(await bench_lateness(bootstrap, root, rate, args.timer_seconds))
                    log(f"lateness: {results['lateness'][-1]}")
            if "memory" not in skip:
                results["memory"] = bench_memory(args.memory_incidents)
                log(f"memory: {results['memory']}")
            if "restart" not in skip:
                results["restart"] = await bench_restart(bootstrap, root, args.restart_incidents)
                log(f"restart: {results['restart']}")
    finally:
        stack.down()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "escalator.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r: dict[str, Any]) -> str:
    rows = ["| figure | measured | baseline (same run) | target |", "|---|---|---|---|"]
    if "core" in r:
        rows.append(f"| decide() alone, commands/s | {r['core']['core_commands_per_s']:,.0f} | - | - |")
    if "throughput" in r:
        t = r["throughput"]
        rows.append(
            f"| escalator commands/s, 1 worker | {t['escalator_commands_per_s']:,.0f} | raw aiokafka consume "
            f"{t['raw_consume_per_s']:,.0f}/s (ratio {t['ratio_to_raw_consume']:.2f}); raw produce "
            f"{t['raw_produce_per_s']:,.0f}/s; cheapest Faust worker doing the same Kafka work "
            f"{t['faust_floor_per_s']:,.0f}/s (ratio {t['ratio_to_faust_floor']:.2f}) | 10,000 |"
        )
        rows.append(
            f"| escalator peak RSS after {t['commands']:,} incidents | {t['escalator_peak_rss_mib']:.0f} MiB | - | - |"
        )
    for x in r.get("lateness", []):
        rows.append(
            f"| timer lateness at {x['timers_per_s']:,.0f} due/s, p50 / p99 / max | {x['lateness_p50_ms']:.1f} / "
            f"{x['lateness_p99_ms']:.1f} / {x['lateness_max_ms']:.1f} ms | - | p99 < 100 ms |"
        )
    if "memory" in r:
        m = r["memory"]
        rows.append(
            f"| state RSS, {m['open_incidents']:,} open incidents | {m['state_rss_mib']:,.0f} MiB "
            f"({m['rss_per_incident_bytes']:.0f} B each; value {m['bytes_per_incident_value']:.0f} B) | - | < 2 GiB |"
        )
    if "restart" in r:
        s = r["restart"]
        rows.append(
            f"| restart with {s['open_incidents']:,} overdue: ready / all fired | {s['restart_to_ready_s']:.1f} s / "
            f"{s['restart_to_all_fired_s']:.1f} s | - | < 15 s |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        sys.exit("stopped by SIGTERM; the processes it started are stopped")
