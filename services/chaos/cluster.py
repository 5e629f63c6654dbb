"""The run's stack: its own Kafka and PostgreSQL, and N workers of each service side by side."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.stack import kafka, postgres, processes
from services.stack.local import LocalStack

SERVICES = processes.SERVICES
MAX_WORKERS = 9


@dataclass(frozen=True)
class Ports:
    """Port of worker `instance` of a service: base + 100 * service index + instance."""

    base: int

    def of(self, name: str, instance: int) -> int:
        """The HTTP port of one worker."""
        return self.base + 100 * SERVICES.index(name) + instance


@dataclass
class Cluster:
    """Starts, kills and restarts workers; restarts the broker and the database. Every call blocks:
    run them in a thread (`asyncio.to_thread`)."""

    stack: LocalStack
    env: dict[str, str]
    ports: Ports
    running: dict[str, set[int]] = field(default_factory=lambda: {name: set() for name in SERVICES})
    unexpected_exits: list[str] = field(default_factory=list)

    def worker(self, name: str, instance: int) -> processes.ServiceProcess:
        """The process record of worker `instance` of service `name`."""
        return processes.ServiceProcess(name, self.stack.root, self.ports.of(name, instance), instance)

    def start(self, name: str, instance: int, timeout: float = 120) -> None:
        """Start one worker and wait until its /healthz answers."""
        proc = self.worker(name, instance)
        processes.start(proc, processes.worker_env(self.env, proc))
        processes.wait_healthy(proc, timeout)
        self.running[name].add(instance)

    def kill(self, name: str, instance: int) -> None:
        """kill -9 one worker (a crash) and return once it is gone."""
        proc = self.worker(name, instance)
        pid = processes.read_pid(proc.pid_file)
        self.running[name].discard(instance)
        if pid is not None:
            processes.kill_hard(pid)

    def stop(self, name: str, instance: int) -> None:
        """SIGTERM one worker (it leaves its group cleanly) and wait until it exited."""
        self.running[name].discard(instance)
        processes.stop(self.worker(name, instance))

    def urls(self, name: str) -> list[str]:
        """Base URLs of the running workers of a service."""
        return [f"http://127.0.0.1:{self.ports.of(name, i)}" for i in sorted(self.running[name])]

    def check_alive(self) -> list[str]:
        """Workers that should run but exited on their own: recorded, and started again."""
        dead = [
            (name, i)
            for name, instances in self.running.items()
            for i in sorted(instances)
            if processes.read_pid(self.worker(name, i).pid_file) is None
        ]
        for name, i in dead:
            label = self.worker(name, i).label
            self.unexpected_exits.append(f"{time.strftime('%H:%M:%S')} {label}")
            self.running[name].discard(i)
            self.start(name, i)
        return [self.worker(name, i).label for name, i in dead]

    def restart_kafka(self) -> None:
        """Stop the broker (controlled shutdown) and start it again; return once it takes clients."""
        kafka.stop(self.stack.kafka)
        kafka.start(self.stack.kafka)
        kafka.wait_ready(self.stack.kafka)

    def restart_postgres(self) -> None:
        """Stop PostgreSQL (fast shutdown: connections are cut) and start it again."""
        postgres.stop(self.stack.postgres)
        postgres.start(self.stack.postgres)

    def stop_all(self, timeout: float = 20) -> None:
        """Stop every worker this cluster started (SIGTERM to all at once, SIGKILL to what is left
        after `timeout` s: a worker waiting for an absent broker may not finish), then the database
        and the broker."""
        pids = []
        for name in SERVICES:
            self.running[name].clear()
            for instance in range(1, MAX_WORKERS + 1):
                proc = self.worker(name, instance)
                pid = processes.read_pid(proc.pid_file)
                proc.pid_file.unlink(missing_ok=True)
                if pid is not None:
                    pids.append(pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(processes.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            if processes.alive(pid):
                processes.kill_hard(pid)
        postgres.stop(self.stack.postgres)
        kafka.stop(self.stack.kafka)


async def start_workers(cluster: Cluster, workers: int) -> None:
    """Start `workers` workers of every service, the audit first (it migrates the database)."""
    await asyncio.to_thread(cluster.start, "audit", 1)
    starts = [(name, i) for name in SERVICES for i in range(1, workers + 1) if (name, i) != ("audit", 1)]
    await asyncio.gather(*(asyncio.to_thread(cluster.start, name, i) for name, i in starts))


def config_yaml(service_prefix: str, services: int, delay: float, url: str) -> str:
    """The run's policy: every service escalates once, `delay` seconds after opening, to `url`."""
    lines = ["services:"]
    for n in range(services):
        lines += [f"  {service_prefix}-{n}:", "    escalation_policy: chaos-one-level"]
    lines += [
        "policies:",
        "  chaos-one-level:",
        "    flap_window: null",
        "    levels:",
        "      - name: on-call",
        f"        delay: {delay:g}s",
        f'        targets: [{{type: webhook, name: on-call, url: "{url}"}}]',
    ]
    return "\n".join(lines) + "\n"


def write_config(folder: Path, text: str) -> Path:
    """Write the run's config folder (one YAML file) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chaos.yaml").write_text(text)
    return folder
