"""`escalation chaos`: a fresh stack, N workers of each service, steady load, faults in turn, a
drain, then the invariants, printed as a table (and written as JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from services.chaos import collect, faults
from services.chaos import invariants as inv
from services.chaos.cluster import Cluster, Ports, config_yaml, start_workers, write_config
from services.chaos.load import Load
from services.chaos.receiver import CountingReceiver
from services.stack import kafka
from services.stack.errors import StackError
from services.stack.local import PROJECT_ROOT, LocalStack
from services.stack.signals import cancel_on_sigterm
from shared.kafka import ensure_topics

SERVICE_PREFIX = "chaos"
TIMELINES = 3  # incidents per broken check whose whole audited history is printed


@dataclass(frozen=True)
class Options:
    """What to run: load, faults, workers, and where."""

    duration: float = 300.0  # seconds of load at least (longer if the faults take longer)
    rate: float = 100.0  # events/s through the intakes
    seed: int = 7
    workers: int = 2  # of each service; a fault adds one more that joins and leaves
    partitions: int = 8
    fault_names: tuple[str, ...] = faults.FULL
    warmup: float = 15.0  # seconds of load before the first fault
    gap: float = 10.0  # seconds of steady load between faults
    delay: float = 5.0  # the policy's escalation delay
    services: int = 20
    drain_timeout: float = 300.0
    # Workers listen on base + 100 * service index + instance, the receiver on base + 500. Every port of
    # the run lies below Linux's ephemeral range (32768-60999): a client reconnecting to a port whose
    # server is down can otherwise be given that very port as its own and connect to itself, and the
    # server restarting there fails with "address already in use" (seen with a Kafka broker on 49092).
    port_base: int = 31100


@dataclass
class Result:
    """What a run did and found."""

    ok: bool
    checks: list[inv.Check]
    facts: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The invariants, one line each, with their counts; problems underneath."""
        lines = []
        for check in self.checks:
            counts = ", ".join(f"{k} {v}" for k, v in check.counts.items())
            lines.append(f"{'PASS' if check.ok else 'FAIL'}  {check.name:<48} {counts}")
            lines += [f"      - {p}" for p in check.problems]
        return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The machine the run ran on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def git_head() -> str:
    """The commit the run ran from, with '+dirty' when the tree had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PROJECT_ROOT, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=PROJECT_ROOT, check=False
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def worker_env(stack: LocalStack, config: Path, opts: Options) -> dict[str, str]:
    """The workers' environment: this stack's broker and database, the run's config, generous limits."""
    env = stack.command_env(config, opts.partitions)
    env.update(
        AUDIT_CHECKPOINT_SECONDS="10",
        # the load comes from one address: the intake's per-caller limit is not what is tested here
        INTAKE_RATE_PER_SECOND="100000",
        INTAKE_RATE_BURST="100000",
        # every page goes to one receiver address; retries back off to at most 5 s, for long enough
        # to outlast the receiver's failure (never dead-lettered during the run)
        NOTIFIER_TARGET_RATE_PER_SECOND="10000",
        NOTIFIER_BACKOFF_MAX_SECONDS="5",
        NOTIFIER_MAX_ATTEMPTS="200",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
    )
    return env


async def _watch(cluster: Cluster) -> None:
    """Every 2 s: a worker that exited on its own is recorded and started again (as a supervisor would)."""
    while True:
        try:
            restarted = await asyncio.to_thread(cluster.check_alive)
            for label in restarted:
                print(f"  watchdog: {label} had exited on its own; started again", flush=True)
        except StackError as exc:
            print(f"  watchdog: restart failed, will retry: {str(exc)[:300]}", flush=True)
        await asyncio.sleep(2.0)  # a supervisor's poll interval


async def run(opts: Options, stack: LocalStack, echo: Any = print) -> Result:
    """One chaos run on a fresh `stack`; everything it started is stopped before it returns."""
    cancel_on_sigterm()  # a SIGTERM stops the workers below before the command exits
    t_start = time.monotonic()
    run_id = uuid.uuid4().hex[:6]
    echo(f"chaos run {run_id}: stack in {stack.root}, Kafka {stack.kafka.bootstrap}, PostgreSQL :{stack.postgres_port}")
    await asyncio.to_thread(stack.up, False, True, echo)
    receiver = CountingReceiver(opts.port_base + 500)
    await receiver.start()
    config = write_config(
        stack.root / "chaos-config", config_yaml(SERVICE_PREFIX, opts.services, opts.delay, receiver.url)
    )
    cluster = Cluster(stack, worker_env(stack, config, opts), Ports(opts.port_base))
    log = faults.FaultLog()
    facts: dict[str, Any] = {
        "run": run_id,
        "machine": machine(),
        "kafka": kafka.kafka_version(stack.kafka),
        "commit": git_head(),
        "options": {**asdict(opts), "fault_names": list(opts.fault_names)},
    }
    watchdog: asyncio.Task[None] | None = None
    try:
        await ensure_topics(stack.kafka.bootstrap, opts.partitions)
        await start_workers(cluster, opts.workers)
        facts["startup_s"] = round(time.monotonic() - t_start, 1)
        echo(f"{opts.workers} workers of each service up after {facts['startup_s']}s; load {opts.rate:g} events/s")
        services = [f"{SERVICE_PREFIX}-{n}" for n in range(opts.services)]
        load = Load(lambda: cluster.urls("intake"), opts.rate, services, run_id, opts.seed)
        loading = asyncio.create_task(load.run_until_stopped(), name="chaos-load")
        watchdog = asyncio.create_task(_watch(cluster), name="chaos-watchdog")
        t_load = time.monotonic()
        plan = faults.schedule(opts.fault_names, cluster, receiver, log, extra=opts.workers + 1)
        await faults.run_schedule(plan, opts.warmup, opts.gap, log)
        await asyncio.sleep(max(opts.gap, opts.duration - (time.monotonic() - t_load)))  # steady load to the end
        load.stop()
        await loading
        facts["load_s"] = round(time.monotonic() - t_load, 1)
        record = load.record
        echo(f"load stopped after {facts['load_s']}s: {record.sent} requests, {len(record.accepted)} answered 202")
        watchdog.cancel()
        pool = await asyncpg.create_pool(stack.postgres.url, min_size=1, max_size=4)
        try:
            caught_up, lag, waited = await collect.drain(
                stack.kafka.bootstrap, pool, record.last_trigger_at + opts.delay + 2, opts.drain_timeout
            )
            facts["drain"] = {"caught_up": caught_up, "seconds": round(waited, 1), "lag": asdict(lag)}
            echo(f"drain: {'caught up' if caught_up else 'NOT caught up'} after {waited:.1f}s (lag {asdict(lag)})")
            checks = await _checks(pool, stack, record.accepted, receiver, log, opts.delay)
            at_fault = dict.fromkeys(i for c in checks for i in c.subjects[:TIMELINES])  # once each, in order
            timelines = [await collect.timeline(pool, i) for i in at_fault]
            if timelines:
                facts["timelines"] = timelines
                echo("\n".join(line for t in timelines for line in t))
            facts["audit_rows"] = await collect.total_rows(pool)
        finally:
            await pool.close()
        facts.update(
            requests=record.sent,
            accepted=len(record.accepted),
            statuses=dict(record.statuses),
            incidents_started=record.incidents,
            accepted_by_action=dict(sorted(_count(record.accepted.values()).items())),
            receiver_refused=receiver.refused,
            faults=[
                {"fault": n, "at": time.strftime("%H:%M:%S", time.gmtime(b)), "seconds": round(e - b, 1)}
                for n, b, e in log.spans
            ],
            unexpected_exits=list(cluster.unexpected_exits),
        )
        exits = list(cluster.unexpected_exits)
        checks.append(inv.Check("no worker exited unless killed", not exits, {"exits": len(exits)}, exits))
        if not caught_up:
            checks.append(inv.Check("drain caught up", False, asdict(lag), ["consumers still behind at the deadline"]))
        return Result(all(c.ok for c in checks), checks, facts)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await receiver.close()
        await asyncio.to_thread(cluster.stop_all)
        facts["total_s"] = round(time.monotonic() - t_start, 1)


async def _checks(
    pool: asyncpg.Pool,
    stack: LocalStack,
    accepted: dict[str, str],
    receiver: CountingReceiver,
    log: faults.FaultLog,
    delay: float,
) -> list[inv.Check]:
    audited = await collect.audited_counts(pool, list(accepted))
    steps_of = await collect.steps(pool)
    commands = await collect.commands(pool)
    caused = await collect.caused(pool)
    fates = inv.fates(commands, await collect.opened(pool), delay, caused)
    all_steps = {s for steps in steps_of.values() for s in steps}
    return [
        inv.accepted_once(accepted, audited),
        inv.escalations_emitted(fates, steps_of),
        inv.commands_applied(commands, fates, caused),
        inv.deliveries_once(all_steps, receiver.accepted, receiver.step_of, receiver.arrivals, log.notifier_kills),
        await collect.verify_chain(pool, stack.signing_key()),
    ]


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def stack_from_env() -> LocalStack:
    """The run's own stack: `.stack/chaos` and ports 31092/31093/31432 unless the environment says otherwise."""
    return LocalStack.of_command("chaos", 31092, 31432)


def write_json(result: Result, path: Path) -> None:
    """The run's facts and checks as JSON."""
    body = {"ok": result.ok, "checks": [asdict(c) for c in result.checks], **result.facts}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
