"""The escalator against real Kafka: kill -9 with 1,000 pending timers, and hand-over between workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from services.stack import processes
from shared import events as ev
from shared.kafka import partitions_of
from shared.topics import INCIDENT_COMMANDS
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


async def test_commands_committed_past_but_never_applied_are_applied_after_a_restart(
    cluster: EscalatorCluster,
) -> None:
    """The escalator reads from its own applied positions, not from the group's committed offsets.

    Faust has committed offsets past commands it skipped in a rebalance (docs/reliability.md,
    finding 1). Here the group's offsets are moved to the end of every partition while the worker is
    down, past triggers it never saw: they must still open their incidents, and the triggers it had
    applied before must not open theirs again.
    """
    keys = _keys_covering_every_partition(cluster.service, "before")
    before = {f"{cluster.service}/{k}" for k in keys}
    reader = await _reader(cluster)
    worker = cluster.worker("a")
    worker.start()
    await cluster.trigger(keys)
    await reader.wait(lambda: reader.keys(ev.INCIDENT_OPENED) >= before, timeout=120)
    processes.stop(worker.proc)  # graceful: its positions and Faust's offsets are stored

    late_keys = [f"late{i:02d}" for i in range(40)]
    late = {f"{cluster.service}/{k}" for k in late_keys}
    await cluster.trigger(late_keys)
    moved = await _commit_group_at_end(cluster)
    assert sum(moved.values()) > 0

    worker = cluster.worker("a")
    worker.start()
    await reader.wait(lambda: reader.keys(ev.INCIDENT_OPENED) >= late, timeout=120)
    opened = reader.by_type[ev.INCIDENT_OPENED]
    assert {k: len(opened[k]) for k in before | late if len(opened[k]) != 1} == {}
    await reader.stop()


async def test_the_groups_committed_offsets_follow_the_escalators_positions(cluster: EscalatorCluster) -> None:
    """Faust commits from where the escalator sought, also when its committed offset lags behind.

    Faust commits every half second, so at a rebalance the committed offset is often behind the
    escalator's own position; before the fix, Faust took the first offset acknowledged after the
    seek for a gap and never committed that partition again (its lag grew for ever: `escalation
    chaos` reported 1,869 commands behind on one partition although all were applied).
    """
    keys = _keys_covering_every_partition(cluster.service, "first")
    worker = cluster.worker("a")
    worker.start()
    await cluster.trigger(keys)
    await _wait_committed_at_end(cluster, timeout=120)
    processes.stop(worker.proc)
    await _commit_group_at(cluster, lambda end: 1)  # behind the stored positions (1: Faust skips 0)

    worker = cluster.worker("a")
    worker.start()
    await cluster.trigger(_keys_covering_every_partition(cluster.service, "second"))
    await _wait_committed_at_end(cluster, timeout=120)


async def _wait_committed_at_end(cluster: EscalatorCluster, timeout: float) -> None:
    """Poll the group's committed offsets until every commands partition is committed up to where it
    ended when the wait began (timer firings and other tests write more meanwhile)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.kafka)
    await admin.start()
    await consumer.start()
    try:
        tps = await partitions_of(consumer, INCIDENT_COMMANDS)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        behind: dict[int, int] = {}
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(f"escalator-{cluster.run}")
            behind = {tp.partition: ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps}
            if all(gap <= 0 for gap in behind.values()):  # others may write more meanwhile
                return
            await asyncio.sleep(0.5)  # commits are periodic: there is no event to await
        raise AssertionError(f"committed offsets behind the end of incidents.commands: {behind}")
    finally:
        await consumer.stop()
        await admin.close()


def _keys_covering_every_partition(service: str, prefix: str, partitions: int = 8) -> list[str]:
    """Dedup keys whose incident keys land on every partition of incidents.commands at least once."""
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    keys: list[str] = []
    covered: set[int] = set()
    while len(covered) < partitions:
        dedup = f"{prefix}{len(keys):03d}"
        keys.append(dedup)
        covered.add(partitioner(f"{service}/{dedup}".encode(), every, every))
    return keys


async def _commit_group_at_end(cluster: EscalatorCluster) -> dict[int, int]:
    """Commit the escalator group's offsets at the end of every commands partition (group empty)."""
    return await _commit_group_at(cluster, lambda end: end)


async def _commit_group_at(cluster: EscalatorCluster, where: Callable[[int], int]) -> dict[int, int]:
    """Commit the (empty) escalator group's offset of each commands partition at `where(end)`;
    return how far each moved."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=cluster.kafka, group_id=f"escalator-{cluster.run}", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, INCIDENT_COMMANDS)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        before = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
        targets = {tp: where(ends[tp]) for tp in tps}
        # The stopped worker's LeaveGroup empties the group; until the broker has done so the commit
        # is refused (rebalance in progress), so it is retried for a few seconds.
        for attempt in range(50):
            try:
                await consumer.commit(targets)
                break
            except KafkaError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.2)
        return {tp.partition: targets[tp] - before[tp] for tp in tps}
    finally:
        await consumer.stop()


def _at(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value
