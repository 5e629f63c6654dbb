"""What the per-service benchmarks compute the same way: latency quantiles, where in time the tail
is, and a process tree's CPU time."""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable
from pathlib import Path


def quantiles(latencies_ms: Iterable[float], prefix: str = "") -> dict[str, float]:
    """p50, p99 and max of `latencies_ms` (keys `p50_ms`, `p99_ms`, `max_ms`, after `prefix`)."""
    ordered = sorted(latencies_ms)
    q = statistics.quantiles(ordered, n=100)
    return {f"{prefix}p50_ms": q[49], f"{prefix}p99_ms": q[98], f"{prefix}max_ms": ordered[-1]}


def worst_by_second(samples: Iterable[tuple[float, float]]) -> list[float]:
    """From (seconds since the start when sent, latency in ms): the worst latency of each second, in order."""
    worst: dict[int, float] = {}
    for sent, ms in samples:
        second = int(sent)
        worst[second] = max(worst.get(second, 0.0), ms)
    return [round(worst[k], 1) for k in sorted(worst)]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far (Linux /proc)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total
