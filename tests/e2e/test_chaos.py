"""A shortened `escalation chaos` run: its own Kafka and PostgreSQL (restarted during the run, so
never the test stack's), two workers of each service, steady load, and a subset of the faults:
kill -9 of an escalator and a notifier, a broker restart, a database restart, a failing receiver.
Every invariant must hold afterwards."""

from __future__ import annotations

import pytest

from services.chaos.run import Options, run
from services.stack.local import PROJECT_ROOT, LocalStack

pytestmark = pytest.mark.e2e

FAULTS = ("kill-escalator", "kill-notifier", "kafka", "postgres", "receiver")


async def test_invariants_hold_through_crashes_and_restarts_under_load() -> None:
    stack = LocalStack(
        root=PROJECT_ROOT / ".stack" / "chaos-test",
        kafka_port=31192,
        controller_port=31193,
        postgres_port=31532,
        config_dir=PROJECT_ROOT / "examples" / "config",
    )
    opts = Options(duration=60, rate=80, fault_names=FAULTS, warmup=8, gap=4, port_base=31700, drain_timeout=180)
    result = await run(opts, stack)
    print(result.table())
    assert result.facts["accepted"] > 1000
    assert not result.facts["unexpected_exits"]
    assert result.ok, result.table()
