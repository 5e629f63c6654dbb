"""A shortened `escalation chaos` run: its own Kafka and PostgreSQL (restarted during the run, so
never the test stack's), two workers of each service, steady load, and a subset of the faults:
kill -9 of an escalator and a notifier, a broker restart, a database restart, a failing receiver.
Every invariant must hold afterwards.

Each run has a folder and ports of its own (two test runs on one machine must not share a broker),
all below Linux's ephemeral port range (see docs/reliability.md), and removes its folder at the end.

A third escalator joins and leaves during the load: that is where Faust handed over commands
past ones it had dropped, and the escalator lost them until it applied commands strictly in offset
order from positions of its own (docs/reliability.md, finding 1). Every invariant must hold.
"""

from __future__ import annotations

import random
import shutil
import socket
import uuid

import pytest

from services.chaos.run import Options, run
from services.stack import kafka
from services.stack.local import PROJECT_ROOT, LocalStack

pytestmark = pytest.mark.e2e

FAULTS = ("kill-escalator", "join-escalator", "kill-notifier", "kafka", "postgres", "receiver")
SPAN = 700  # ports a run uses from its base: workers base+101..base+404, receiver base+500, stack base+601..603
CACHE = PROJECT_ROOT / ".stack" / "chaos-test"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_base() -> int:
    """A base whose ports are all free now, between 20000 and the ephemeral range (32768)."""
    for _ in range(50):
        base = random.randrange(20000, 32768 - SPAN, 100)
        if all(_free(p) for p in range(base + 1, base + SPAN)):
            return base
    pytest.fail("no free block of ports below 32768")


def _stack(base: int) -> LocalStack:
    """A stack in a folder of its own, sharing the cached Kafka jars."""
    shared = kafka.KafkaPaths(state_dir=CACHE / "kafka")
    kafka.ensure_jars(shared)  # under a file lock: concurrent runs resolve them once
    root = CACHE / uuid.uuid4().hex[:8]
    (root / "kafka").mkdir(parents=True)
    (root / "kafka" / "libs").symlink_to(shared.libs_dir)
    return LocalStack(
        root=root,
        kafka_port=base + 601,
        controller_port=base + 602,
        postgres_port=base + 603,
        config_dir=PROJECT_ROOT / "examples" / "config",
    )


async def test_invariants_hold_through_crashes_and_restarts_under_load() -> None:
    base = _port_base()
    stack = _stack(base)
    opts = Options(duration=60, rate=80, fault_names=FAULTS, warmup=8, gap=4, port_base=base, drain_timeout=180)
    try:
        result = await run(opts, stack)
    finally:
        shutil.rmtree(stack.root, ignore_errors=True)
    print(result.table())
    assert result.facts["accepted"] > 1000
    assert result.ok, result.table()
