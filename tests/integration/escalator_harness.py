"""Escalator workers as real processes and a reader of what they emit, for resilience tests."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from services.stack import processes
from shared import events as ev
from shared.envelope import decode, new_envelope
from shared.kafka import Publisher, ensure_topics, make_producer, partitions_of
from shared.topics import ESCALATION_EVENTS, INCIDENT_COMMANDS
from tests.support import free_port, one_level_policy


@dataclass
class Worker:
    """One escalator process."""

    proc: processes.ServiceProcess
    env: dict[str, str]

    def start(self) -> None:
        """Start and wait until it serves /healthz (recovered, partitions assigned)."""
        processes.start(self.proc, self.env)
        processes.wait_healthy(self.proc, timeout=120)

    def pid(self) -> int:
        """The running pid."""
        pid = processes.read_pid(self.proc.pid_file)
        assert pid is not None, f"{self.proc.name} is not running"
        return pid

    def commands_processed(self) -> float:
        """Sum of escalator_commands_total from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.proc.port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("escalator_commands_total{")
        )


@dataclass
class EscalatorCluster:
    """Workers of one consumer group with their own policy folder and service name."""

    root: Path
    kafka: str
    delay: float
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def service(self) -> str:
        """The service name only this test's incidents use."""
        return f"resilience-{self.run}"

    def worker(self, name: str) -> Worker:
        """A worker record (not started)."""
        config = self.root / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "policy.yaml").write_text(one_level_policy(self.service, self.delay))
        port = free_port()
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            ESCALATION_CONFIG_DIR=str(config),
            ESCALATOR_APP_ID=f"escalator-{self.run}",
            ESCALATOR_DATA_DIR=str(self.root / name / "data"),
            ESCALATOR_PORT=str(port),
            LOG_LEVEL="INFO",
        )
        return Worker(processes.ServiceProcess("escalator", self.root / name, port), env)

    async def trigger(self, keys: list[str]) -> None:
        """Write one trigger per dedup key to incidents.commands (acks=all)."""
        producer = make_producer(self.kafka, "resilience-test")
        await producer.start()
        try:
            publisher = Publisher(producer)
            from datetime import UTC, datetime

            for dedup in keys:
                payload = ev.Trigger(service=self.service, dedup_key=dedup, summary="pending timer")
                env = new_envelope(
                    ev.TRIGGER, payload, incident_key=f"{self.service}/{dedup}", occurred_at=datetime.now(UTC)
                )
                await publisher.publish(INCIDENT_COMMANDS, env)
        finally:
            await producer.stop()


class EventReader:
    """Reads escalations.events from its end at start; indexes this test's events by type and key."""

    def __init__(self, kafka: str, prefix: str) -> None:
        self._kafka, self._prefix = kafka, prefix
        self.by_type: dict[str, dict[str, list[dict[str, object]]]] = defaultdict(lambda: defaultdict(list))
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every partition at its current end, then read in the background."""
        await ensure_topics(self._kafka, 8)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka, group_id=None, isolation_level="read_committed", enable_auto_commit=False
        )
        await self._consumer.start()
        tps = await partitions_of(self._consumer, ESCALATION_EVENTS)
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for record in self._consumer:
            env = decode(record.value)
            if not env.incident_key.startswith(self._prefix):
                continue
            async with self._changed:
                self.by_type[env.type][env.incident_key].append({**env.payload, "_occurred_at": env.occurred_at})
                self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until `predicate()` holds, re-checked on each new event."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def keys(self, type_: str) -> set[str]:
        """Incident keys with at least one event of `type_`."""
        return {k for k, v in self.by_type[type_].items() if v}

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
        await self._consumer.stop()


def dump(obj: object) -> str:
    """JSON for assertion messages."""
    return json.dumps(obj, default=str)[:2000]
