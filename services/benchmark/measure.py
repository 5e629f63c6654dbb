"""What the pipeline did during the run: consumer lag, throughput per stage, timer lateness, memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiokafka.errors import KafkaError

from services.chaos import collect
from services.stack import processes
from shared.topics import INCIDENT_COMMANDS

_LATENESS = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY late), percentile_cont(0.99) WITHIN GROUP (ORDER BY late),
       count(*)
FROM (SELECT extract(epoch FROM occurred_at - (payload->>'due_at')::timestamptz) * 1000 AS late
      FROM audit_log WHERE type = 'escalation.step_reached' AND (payload->>'level')::int >= 2
        AND payload->>'due_at' IS NOT NULL AND occurred_at >= $1) AS steps
"""


@dataclass(frozen=True)
class Sample:
    """One look at the pipeline."""

    at: float  # seconds since the run's load started
    audit_lag: int
    escalator_lag: int
    notifier_lag: int
    audit_rows: int  # highest audit row number
    commands_done: int  # incidents.commands messages the escalator group committed
    pages: int  # pages the receiver took


@dataclass
class Sampler:
    """Looks every `every` seconds until stopped."""

    bootstrap: str
    pool: asyncpg.Pool
    pages: Callable[[], int]
    every: float = 5.0
    samples: list[Sample] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    async def look(self, started: float) -> Sample:
        """One sample now."""
        lag = await collect.lag(self.bootstrap, self.pool)
        rows = await self.pool.fetchval("SELECT coalesce(max(seq), 0) FROM audit_log")
        done = await collect.group_offsets(self.bootstrap, collect.ESCALATOR_GROUP)
        commands = sum(o for tp, o in done.items() if tp.topic == INCIDENT_COMMANDS)
        sample = Sample(
            time.monotonic() - started,
            lag.audit,
            lag.escalator,
            lag.notifier,
            int(rows),
            commands,
            self.pages(),
        )
        self.samples.append(sample)
        return sample

    async def run(self, started: float) -> None:
        """Sample until cancelled."""
        while True:
            try:
                await self.look(started)
            except (OSError, KafkaError, asyncpg.PostgresError) as exc:  # missed; the next one counts
                self.missed.append(f"{time.monotonic() - started:.0f}s: {exc!r}")
            await asyncio.sleep(self.every)  # a sampling period, not a wait for an event


def rate_between(samples: list[Sample], attr: str, start: float, end: float) -> float:
    """Per-second growth of `attr` between the samples nearest to `start` and `end` seconds."""
    inside = [s for s in samples if start <= s.at <= end]
    if len(inside) < 2:
        return 0.0
    first, last = inside[0], inside[-1]
    return float(getattr(last, attr) - getattr(first, attr)) / max(1e-9, last.at - first.at)


def lag_growth(samples: list[Sample], start: float, end: float) -> dict[str, int]:
    """How much each consumer's lag grew from the first to the last sample of [start, end]."""
    inside = [s for s in samples if start <= s.at <= end]
    if len(inside) < 2:
        return {}
    first, last = inside[0], inside[-1]
    return {
        name: getattr(last, f"{name}_lag") - getattr(first, f"{name}_lag")
        for name in ("audit", "escalator", "notifier")
    }


async def timer_lateness(pool: asyncpg.Pool, since: float) -> tuple[float | None, float | None, int]:
    """p50 and p99 milliseconds from a timer-driven step's due time to its decision, and how many."""
    from datetime import UTC, datetime

    row = await pool.fetchrow(_LATENESS, datetime.fromtimestamp(since, UTC))
    assert row is not None
    return row[0], row[1], int(row[2])


def peak_memory_mib(state_dir: Path, names: tuple[str, ...], instances: int) -> dict[str, float]:
    """Peak resident memory (VmHWM) of each running worker, in MiB, by worker label."""
    out: dict[str, float] = {}
    for name in names:
        for instance in range(1, instances + 1):
            proc = processes.ServiceProcess(name, state_dir, 0, instance)
            pid = processes.read_pid(proc.pid_file)
            if pid is None:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[proc.label] = round(int(line.split()[1]) / 1024, 1)
    return out
