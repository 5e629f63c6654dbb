"""The escalator against real Kafka: kill -9 with 1,000 pending timers, and hand-over between workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from services.stack import processes
from shared import events as ev
from tests.integration.escalator_harness import EscalatorCluster, EventReader
from tests.support import stack_env

pytestmark = pytest.mark.integration


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EscalatorCluster]:
    kafka, _ = stack_env()
    yield EscalatorCluster(root=tmp_path, kafka=kafka, delay=25.0)
    for name in ("a", "b"):
        processes.stop(processes.ServiceProcess("escalator", tmp_path / name, 0))


async def _reader(cluster: EscalatorCluster) -> EventReader:
    reader = EventReader(cluster.kafka, cluster.service + "/")
    await reader.start()
    return reader


def _one_step_id_each(reader: EventReader, keys: set[str]) -> dict[str, set[object]]:
    """Incidents whose steps carry more than one step id (must be none)."""
    steps = reader.by_type[ev.ESCALATION_STEP_REACHED]
    return {k: ids for k in keys if len(ids := {s["step_id"] for s in steps[k]}) != 1}


async def test_kill_9_with_1000_pending_timers_loses_and_doubles_nothing(cluster: EscalatorCluster) -> None:
    n = 1000
    keys = [f"i{i:04d}" for i in range(n)]
    full = {f"{cluster.service}/{k}" for k in keys}
    reader = await _reader(cluster)
    first = cluster.worker("a")
    first.start()
    await cluster.trigger(keys)
    await reader.wait(lambda: reader.keys(ev.INCIDENT_OPENED) >= full, timeout=120)
    assert reader.keys(ev.ESCALATION_STEP_REACHED) & full == set()  # every timer is still pending

    processes.kill_hard(first.pid())
    restarted = time.monotonic()
    second = cluster.worker("a")
    second.start()
    await reader.wait(lambda: reader.keys(ev.ESCALATION_STEP_REACHED) >= full, timeout=240)
    took = time.monotonic() - restarted
    steps = [s for k in full for s in reader.by_type[ev.ESCALATION_STEP_REACHED][k]]
    late = sorted((_at(s["_occurred_at"]) - datetime.fromisoformat(str(s["due_at"]))).total_seconds() for s in steps)
    print(
        f"\n[figure] all {n} escalations emitted {took:.1f}s after the restart; lateness against the deadline "
        f"p50 {late[len(late) // 2]:.2f}s, max {late[-1]:.2f}s"
    )

    # A sentinel armed now with the same delay fires after every earlier deadline: wait for it,
    # then nothing more can come for the first thousand.
    await cluster.trigger(["sentinel"])
    sentinel = f"{cluster.service}/sentinel"
    await reader.wait(lambda: sentinel in reader.keys(ev.ESCALATION_STEP_REACHED), timeout=120)
    assert _one_step_id_each(reader, full) == {}
    assert reader.keys(ev.INCIDENT_OPENED) >= full
    await reader.stop()


async def test_stopping_one_of_two_workers_moves_its_timers_to_the_other(cluster: EscalatorCluster) -> None:
    n = 200
    keys = [f"w{i:03d}" for i in range(n)]
    full = {f"{cluster.service}/{k}" for k in keys}
    reader = await _reader(cluster)
    a, b = cluster.worker("a"), cluster.worker("b")
    a.start()
    b.start()
    await asyncio.to_thread(processes.wait_healthy, a.proc, 120)  # both recovered after the rebalance
    await cluster.trigger(keys)
    await reader.wait(lambda: reader.keys(ev.INCIDENT_OPENED) >= full, timeout=120)
    assert a.commands_processed() > 0
    assert b.commands_processed() > 0  # the partitions were shared

    processes.stop(b.proc)  # graceful SIGTERM
    await reader.wait(lambda: reader.keys(ev.ESCALATION_STEP_REACHED) >= full, timeout=180)
    await cluster.trigger(["sentinel"])
    sentinel = f"{cluster.service}/sentinel"
    await reader.wait(lambda: sentinel in reader.keys(ev.ESCALATION_STEP_REACHED), timeout=120)
    assert _one_step_id_each(reader, full) == {}
    await reader.stop()


def _at(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value
