"""A shortened `escalation chaos` run: its own Kafka and PostgreSQL (restarted during the run, so
never the test stack's), two workers of each service, steady load, and a subset of the faults:
kill -9 of an escalator and a notifier, a broker restart, a database restart, a failing receiver.
Every invariant must hold afterwards.

One failure is known and reported as XFAIL, with its counts: Faust (faust-streaming 0.15.3) can
skip and acknowledge commands the escalator takes from a partition it keeps through a rebalance,
so a few commands in incidents.commands are never applied (docs/reliability.md, "What the runs
found"). Only that, and the escalation of an incident whose resolve was lost that way, turn into
an XFAIL; any other broken invariant fails the test."""

from __future__ import annotations

import pytest

from services.chaos.run import Options, run
from services.stack.local import PROJECT_ROOT, LocalStack

pytestmark = pytest.mark.e2e

FAULTS = ("kill-escalator", "kill-notifier", "kafka", "postgres", "receiver")
LOST_COMMANDS = "every command applied by the escalator"
DUE = "every due escalation emitted"


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
    failed = {c.name: c for c in result.checks if not c.ok}
    known = LOST_COMMANDS in failed and set(failed) <= {LOST_COMMANDS, DUE}
    if known and (DUE not in failed or failed[DUE].counts["missing"] == 0):
        pytest.xfail(f"known: the escalator lost commands at a rebalance (Faust): {failed[LOST_COMMANDS].counts}")
    assert result.ok, result.table()
