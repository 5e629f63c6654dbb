"""The fault schedule: each fault in turn, under load, each one held for a while and then healed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.chaos.cluster import Cluster
from services.chaos.receiver import CountingReceiver, Mode

DOWN = 3.0  # seconds a killed worker stays down before it is started again
JOINED = 15.0  # seconds a joining worker stays before it leaves
RECEIVER_FAILING = 10.0  # seconds of 500s, then as long with the port closed


@dataclass(frozen=True)
class Fault:
    """One named fault: `apply` breaks something, holds it, and heals it."""

    name: str
    apply: Callable[[], Awaitable[None]]


@dataclass
class FaultLog:
    """When each fault began and ended (epoch seconds), and the instants notifiers were killed."""

    spans: list[tuple[str, float, float]] = field(default_factory=list)
    notifier_kills: list[float] = field(default_factory=list)


def kill_9(cluster: Cluster, name: str, instance: int, log: FaultLog) -> Fault:
    """kill -9 one worker, leave it down for DOWN seconds, start it again."""

    async def apply() -> None:
        if name == "notifier":
            log.notifier_kills.append(time.time())
        await asyncio.to_thread(cluster.kill, name, instance)
        await asyncio.sleep(DOWN)  # the fault's duration, not a wait for something
        await asyncio.to_thread(cluster.start, name, instance)

    return Fault(f"kill -9 {cluster.worker(name, instance).label}", apply)


def join_and_leave(cluster: Cluster, name: str, instance: int) -> Fault:
    """One more worker joins the group, works for JOINED seconds, then leaves (SIGTERM)."""

    async def apply() -> None:
        await asyncio.to_thread(cluster.start, name, instance)
        await asyncio.sleep(JOINED)
        await asyncio.to_thread(cluster.stop, name, instance)

    return Fault(f"{cluster.worker(name, instance).label} joins, leaves after {JOINED:g}s", apply)


def kafka_restart(cluster: Cluster) -> Fault:
    """The broker stops and starts again (every client reconnects; the intake answers 503 meanwhile)."""
    return Fault("Kafka broker restart", lambda: asyncio.to_thread(cluster.restart_kafka))


def postgres_restart(cluster: Cluster) -> Fault:
    """PostgreSQL stops (fast: connections cut) and starts again."""
    return Fault("PostgreSQL restart", lambda: asyncio.to_thread(cluster.restart_postgres))


def receiver_failure(receiver: CountingReceiver) -> Fault:
    """The webhook receiver answers 500, then refuses connections, then recovers."""

    async def apply() -> None:
        receiver.mode = Mode.FAIL
        await asyncio.sleep(RECEIVER_FAILING)
        await receiver.close()
        await asyncio.sleep(RECEIVER_FAILING)
        await receiver.start()

    return Fault(f"webhook receiver 500 for {RECEIVER_FAILING:g}s, then closed for {RECEIVER_FAILING:g}s", apply)


FULL = (
    "kill-intake",
    "kill-escalator",
    "kill-notifier",
    "kill-audit",
    "join-escalator",
    "join-notifier",
    "join-audit",
    "kafka",
    "postgres",
    "receiver",
)
SHORT = ("kill-escalator", "kill-notifier", "join-escalator", "kafka", "postgres", "receiver")


def schedule(
    names: tuple[str, ...], cluster: Cluster, receiver: CountingReceiver, log: FaultLog, extra: int
) -> list[Fault]:
    """The faults named, in order; `extra` is the instance number of a joining worker."""
    faults: dict[str, Callable[[], Fault]] = {
        "kafka": lambda: kafka_restart(cluster),
        "postgres": lambda: postgres_restart(cluster),
        "receiver": lambda: receiver_failure(receiver),
    }
    for service in ("intake", "escalator", "notifier", "audit"):
        faults[f"kill-{service}"] = lambda s=service: kill_9(cluster, s, 1, log)  # type: ignore[misc]
        faults[f"join-{service}"] = lambda s=service: join_and_leave(cluster, s, extra)  # type: ignore[misc]
    unknown = [n for n in names if n not in faults]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; known: {', '.join(sorted(faults))}")
    return [faults[n]() for n in names]


async def run_schedule(faults: list[Fault], start_in: float, gap: float, log: FaultLog) -> None:
    """Apply the faults one after the other: the first after `start_in` s, then `gap` s after the last healed."""
    await asyncio.sleep(start_in)
    for n, fault in enumerate(faults):
        if n:
            await asyncio.sleep(gap)  # steady load between faults
        began = time.time()
        print(f"  fault: {fault.name} ... ({time.strftime('%H:%M:%S', time.gmtime(began))} UTC)", flush=True)
        try:
            await fault.apply()
        except Exception as exc:
            print(f"  fault: {fault.name} FAILED to apply or heal: {exc}", flush=True)
            raise
        log.spans.append((fault.name, began, time.time()))
        print(f"  fault: {fault.name} healed after {time.time() - began:.1f}s", flush=True)
