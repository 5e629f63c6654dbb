"""CPU time of each part of the pipeline over a phase of the benchmark, read from /proc.

A worker's figure is its process (every thread of it); PostgreSQL's is the postmaster and every
backend under it; the bench's own is this process (load generator, webhook receiver, sampler).
Dividing by the events the phase accepted gives what one event costs each part: the budget that
says how many cores a given rate needs on this machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from services.stack import kafka, postgres, processes
from services.stack.local import LocalStack

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process so far (None: it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields start after its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_of(parent: int) -> list[int]:
    """Pids whose parent is `parent`, read from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            out.append(int(entry.name))
    return out


def parts(stack: LocalStack, names: tuple[str, ...], instances: int) -> dict[str, list[int]]:
    """The pids of each part of the pipeline now, by label."""
    out: dict[str, list[int]] = {}
    for name in names:
        for instance in range(1, instances + 1):
            proc = processes.ServiceProcess(name, stack.root, 0, instance)
            pid = processes.read_pid(proc.pid_file)
            if pid is not None:
                out[proc.label] = [pid]
    broker = kafka.pid(stack.kafka)
    if broker is not None:
        out["kafka"] = [broker]
    postmaster = postgres.pid(stack.postgres)
    if postmaster is not None:
        out["postgres"] = [postmaster, *children_of(postmaster)]
    out["bench"] = [os.getpid()]
    return out


@dataclass(frozen=True)
class Reading:
    """CPU seconds of each part at one instant."""

    at: float  # monotonic seconds
    seconds: dict[str, float]


def read(stack: LocalStack, names: tuple[str, ...], instances: int) -> Reading:
    """CPU seconds of each part now; a process that ended between listing and reading counts 0."""
    seconds = {
        label: sum(cpu_seconds(pid) or 0.0 for pid in pids) for label, pids in parts(stack, names, instances).items()
    }
    return Reading(time.monotonic(), seconds)


def usage(before: Reading, after: Reading, events: int) -> dict[str, dict[str, float]]:
    """Per part: cores used between the readings, and CPU milliseconds per accepted event.

    A PostgreSQL backend that ended between the readings is missing from `after`, so its time is
    not counted (the audit's and the bench's pools keep theirs for the whole run).
    """
    wall = max(1e-9, after.at - before.at)
    out: dict[str, dict[str, float]] = {}
    for label, end in after.seconds.items():
        start = before.seconds.get(label, 0.0)
        used = max(0.0, end - start)
        out[label] = {
            "cores": round(used / wall, 3),
            "ms_per_event": round(1000 * used / events, 4) if events else float("nan"),
        }
    total = sum(v["cores"] for v in out.values())
    out["total"] = {
        "cores": round(total, 3),
        "ms_per_event": round(sum(v["ms_per_event"] for v in out.values()), 4) if events else float("nan"),
    }
    return out
