"""`escalation bench`: a fresh stack, the four services, raw baselines, then the pipeline under load.

1. Raw baselines of this machine, in this run: aiokafka produce (acks=all) and consume, a bare
   asyncpg COPY, a bare HTTP POST loop to the run's receiver.
2. Latency phase: `latency_rate` events/s for `latency_seconds`; every incident's first page is
   matched to its trigger: p50/p99 trigger-to-first-notification (level 1 has no delay).
3. Sustained phase: `rate` events/s for `duration` seconds; accepted events/s, escalator commands/s,
   deliveries/s and audit rows/s from samples every 5 s, and whether any consumer's lag grew.
Then timer lateness (level 2 and 3 steps: decided at vs due at) and each worker's peak memory.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from services.benchmark import baselines, cpu, measure, report
from services.benchmark.load import BatchLoad
from services.benchmark.receiver import PageReceiver
from services.chaos.cluster import SERVICES, Cluster, Ports, start_workers
from services.chaos.run import git_head, machine
from services.stack.local import PROJECT_ROOT, LocalStack
from services.stack.signals import cancel_on_sigterm
from shared.kafka import ensure_topics

PREFIX = "bench"
POLICY = """
services:
{services}
policies:
  bench-ladder:
    flap_window: null
    levels:
      - name: frontline
        delay: 0s
        targets: [{{type: webhook, name: frontline, url: "{url}/l1"}}]
      - name: infrastructure
        delay: 5s
        targets: [{{type: webhook, name: infrastructure, url: "{url}/l2"}}]
      - name: management
        delay: 15s
        kind: hierarchical
        targets: [{{type: webhook, name: management, url: "{url}/l3"}}]
"""


@dataclass(frozen=True)
class Options:
    """What to run."""

    rate: float = 5000.0  # events/s in the sustained phase
    duration: float = 300.0  # seconds of the sustained phase
    latency_rate: float = 1000.0
    latency_seconds: float = 30.0
    workers: int = 1  # of each service
    services: int = 50
    partitions: int = 8
    seed: int = 11
    port_base: int = 32100  # workers at base + 100 * service index + instance, receiver at base + 500
    out: Path = PROJECT_ROOT / "bench" / "results"


def stack_from_env() -> LocalStack:
    """The run's own stack: `.stack/bench-e2e` and ports 32092/32093/32432 unless the environment says otherwise."""
    return LocalStack.of_command("bench-e2e", 32092, 32432)


def _env(stack: LocalStack, config: Path, opts: Options) -> dict[str, str]:
    env = stack.command_env(config, opts.partitions)
    env.update(
        INTAKE_RATE_PER_SECOND="1000000",  # one load generator stands for many monitoring systems
        INTAKE_RATE_BURST="1000000",
        NOTIFIER_TARGET_RATE_PER_SECOND="1000000",  # one receiver stands for many teams' endpoints
        NOTIFIER_CHANNEL_RATE_PER_SECOND="1000000",
        LOG_LEVEL="WARNING",
    )
    return env


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))] if ordered else float("nan")


async def run(opts: Options, stack: LocalStack, echo: Any = print) -> dict[str, Any]:
    """One benchmark run on a fresh `stack`; everything it started is stopped before it returns."""
    cancel_on_sigterm()  # a SIGTERM stops the workers below before the command exits
    t_start = time.monotonic()
    run_id = uuid.uuid4().hex[:6]
    echo(f"bench {run_id}: stack in {stack.root}, Kafka {stack.kafka.bootstrap}")
    await asyncio.to_thread(stack.up, False, True, echo)
    receiver = PageReceiver(opts.port_base + 500)
    await receiver.start()
    config = stack.root / "bench-config"
    config.mkdir(parents=True, exist_ok=True)
    services = [f"{PREFIX}-{n}" for n in range(opts.services)]
    listed = "\n".join(f"  {s}:\n    escalation_policy: bench-ladder" for s in services)
    (config / "bench.yaml").write_text(POLICY.format(services=listed, url=receiver.url("page").rstrip("/")))
    cluster = Cluster(stack, _env(stack, config, opts), Ports(opts.port_base))
    result: dict[str, Any] = {
        "run": run_id,
        "machine": machine(),
        "machine_cpus": os.cpu_count(),
        "commit": git_head(),
        "workers": opts.workers,
        "options": {k: str(v) for k, v in asdict(opts).items()},
    }
    bootstrap = stack.kafka.bootstrap
    try:
        echo("raw baselines ...")
        await ensure_topics(bootstrap, opts.partitions, extra=["bench.raw"])
        raw = {
            "produce": await baselines.kafka_produce(bootstrap, "bench.raw", 100_000),
            "consume": await baselines.kafka_consume(bootstrap, "bench.raw", 100_000),
            "copy": await baselines.postgres_copy(stack.postgres.url, 100_000),
            "post": await baselines.http_posts(receiver.url("raw"), 10_000),
        }
        result["raw"] = raw
        echo("  " + ", ".join(f"{k} {v:,.0f}/s" for k, v in raw.items()))
        await ensure_topics(bootstrap, opts.partitions)
        await start_workers(cluster, opts.workers)
        intake = cluster.urls("intake")[0]
        pool = await asyncpg.create_pool(stack.postgres.url, min_size=1, max_size=4)
        try:
            # Latency phase.
            echo(f"latency phase: {opts.latency_rate:g} events/s for {opts.latency_seconds:g} s ...")
            lat_load = BatchLoad(intake, opts.latency_rate, services, opts.seed)
            t_lat = time.time()
            cpu_before = cpu.read(stack, SERVICES, opts.workers)
            await lat_load.run(opts.latency_seconds, t_lat)
            await _until(lambda: set(lat_load.figures.triggered_at) <= set(receiver.first), 120)
            # Until every incident is paged: the CPU of the events' whole way, backlog included.
            result["cpu_latency"] = cpu.usage(
                cpu_before, cpu.read(stack, SERVICES, opts.workers), lat_load.figures.accepted
            )
            matched = [
                (sent - t_lat, (receiver.first[i] - sent) * 1000)
                for i, sent in lat_load.figures.triggered_at.items()
                if i in receiver.first
            ]
            latencies = [ms for _, ms in matched]
            result["latency"] = {
                "rate": opts.latency_rate,
                "incidents": len(lat_load.figures.triggered_at),
                "paged": len(latencies),
                "p50_ms": statistics.median(latencies) if latencies else None,
                "p99_ms": _p(latencies, 0.99),
                "max_ms": max(latencies, default=None),
            }
            echo(f"  {result['latency']}")

            # Sustained phase.
            echo(f"sustained phase: {opts.rate:g} events/s for {opts.duration:g} s ...")
            load = BatchLoad(intake, opts.rate, services, opts.seed + 1)
            sampler = measure.Sampler(bootstrap, pool, lambda: receiver.pages)
            started_m = time.monotonic()
            started_w = time.time()
            sampling = asyncio.create_task(sampler.run(started_m))
            cpu_before = cpu.read(stack, SERVICES, opts.workers)
            await load.run(opts.duration, started_w)
            elapsed = time.monotonic() - started_m
            result["cpu_sustained"] = cpu.usage(
                cpu_before, cpu.read(stack, SERVICES, opts.workers), load.figures.accepted
            )
            await sampler.look(started_m)
            sampling.cancel()
            samples = sampler.samples
            warm = min(10.0, elapsed / 4)
            figures = load.figures
            steady = [n for s, n in figures.per_second.items() if warm <= s < elapsed - 1]
            result["sustained"] = {
                "rate": opts.rate,
                "seconds": round(elapsed, 1),
                "accepted": figures.accepted,
                "refused": figures.refused,
                "accepted_per_s": figures.accepted / elapsed,
                "accepted_per_s_min_second": min(steady, default=0),
                "commands_per_s": measure.rate_between(samples, "commands_done", warm, elapsed),
                "deliveries_per_s": measure.rate_between(samples, "pages", warm, elapsed),
                "audit_rows_per_s": measure.rate_between(samples, "audit_rows", warm, elapsed),
                "lag_growth": measure.lag_growth(samples, warm, elapsed),
                "lag_at_end": asdict(samples[-1]) if samples else {},
            }
            echo(f"  {result['sustained']}")
            p50, p99, count = await measure.timer_lateness(pool, t_lat)
            result["timer_lateness"] = {"p50_ms": p50, "p99_ms": p99, "steps": count}
            names = (*SERVICES,)
            result["peak_memory_mib"] = measure.peak_memory_mib(stack.root, names, opts.workers)
            result["samples"] = [asdict(s) for s in samples]
            result["samples_missed"] = sampler.missed
        finally:
            await pool.close()
        result["table"] = _table(result)
        paths = report.write(result, opts.out, matched)
        result["files"] = [str(p) for p in paths]
        return result
    finally:
        await receiver.stop()
        await asyncio.to_thread(cluster.stop_all)
        result["total_s"] = round(time.monotonic() - t_start, 1)


async def _until(condition: Any, timeout: float) -> bool:
    """Wait (polling the receiver's tally) until `condition()` holds or `timeout` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


def _table(r: dict[str, Any]) -> list[dict[str, str]]:
    raw, s, lat, late = r["raw"], r["sustained"], r["latency"], r["timer_lateness"]
    cl, cs, cpus = r["cpu_latency"], r["cpu_sustained"], r["machine_cpus"]
    per_event = cl["total"]["ms_per_event"]
    growth = s["lag_growth"]
    grew = ", ".join(f"{k} {v:+,}" for k, v in growth.items()) if growth else "n/a"
    mem = ", ".join(f"{k} {v:,.0f}" for k, v in r["peak_memory_mib"].items())

    def ratio(value: float, base: float) -> str:
        return f"{base:,.0f}/s (ratio {value / base:.2f})" if base else "-"

    return [
        {
            "figure": f"accepted events/s, sustained {s['seconds']:.0f} s at {s['rate']:,.0f}/s offered "
            f"(slowest second after warm-up)",
            "measured": f"{s['accepted_per_s']:,.0f} ({s['accepted_per_s_min_second']:,})",
            "baseline": "aiokafka produce acks=all " + ratio(s["accepted_per_s"], raw["produce"]),
            "target": "5,000 for 5 min",
        },
        {
            "figure": "consumer lag growth over the sustained phase (messages)",
            "measured": grew,
            "baseline": "-",
            "target": "no growth",
        },
        {
            "figure": "escalator commands/s",
            "measured": f"{s['commands_per_s']:,.0f}",
            "baseline": "aiokafka consume " + ratio(s["commands_per_s"], raw["consume"]),
            "target": "-",
        },
        {
            "figure": "deliveries/s (webhook pages at the receiver)",
            "measured": f"{s['deliveries_per_s']:,.0f}",
            "baseline": "bare aiohttp POST loop " + ratio(s["deliveries_per_s"], raw["post"]),
            "target": "-",
        },
        {
            "figure": "audit rows/s",
            "measured": f"{s['audit_rows_per_s']:,.0f}",
            "baseline": "bare asyncpg COPY " + ratio(s["audit_rows_per_s"], raw["copy"]),
            "target": "-",
        },
        {
            "figure": f"trigger to first notification at {lat['rate']:,.0f} events/s, p50 / p99 / max "
            f"({lat['paged']} of {lat['incidents']} incidents)",
            "measured": f"{lat['p50_ms']:.0f} / {lat['p99_ms']:.0f} / {lat['max_ms']:.0f} ms"
            if lat["paged"]
            else "none paged",
            "baseline": "-",
            "target": "p99 < 250 ms",
        },
        {
            "figure": f"timer lateness, level 2-3 steps, p50 / p99 ({late['steps']} steps)",
            "measured": f"{late['p50_ms'] or 0:.0f} / {late['p99_ms'] or 0:.0f} ms",
            "baseline": "-",
            "target": "-",
        },
        {"figure": "peak memory per worker (MiB)", "measured": mem, "baseline": "-", "target": "-"},
        {
            "figure": f"CPU per accepted event, latency phase until all paged (total {per_event:.2f} ms: "
            f"{per_event:.2f} cores at 1,000 events/s, {5 * per_event:.1f} at 5,000; this machine has {cpus})",
            "measured": _cpu(cl),
            "baseline": "-",
            "target": "-",
        },
        {
            "figure": f"CPU cores used in the sustained phase (total {cs['total']['cores']:.2f} of {cpus})",
            "measured": ", ".join(f"{k} {v['cores']:.2f}" for k, v in cs.items() if k != "total"),
            "baseline": "-",
            "target": "-",
        },
    ]


def _cpu(usage: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{k} {v['ms_per_event']:.3f} ms" for k, v in usage.items() if k != "total")
