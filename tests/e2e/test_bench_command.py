"""`escalation bench` end to end, shortened: a fresh stack of its own, the four services, raw
baselines, both phases; the table, JSON and plot are written and every figure was measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)  # a stack of its own, four services, baselines and two phases
def test_a_short_bench_run_measures_every_figure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env.update(
        # In the project (PostgreSQL runs as its own user, which may not enter pytest's private tmp folders).
        ESCALATION_STACK_DIR=str(Path(__file__).resolve().parents[2] / ".stack" / "test-bench"),
        STACK_KAFKA_PORT="32192",
        STACK_KAFKA_CONTROLLER_PORT="32193",
        STACK_POSTGRES_PORT="32532",
    )
    command = [
        sys.executable, "-m", "services.cli", "bench",
        "--rate", "400", "--duration", "15", "--latency-rate", "100", "--latency-seconds", "5",
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| figure | measured | raw baseline (same run) | target |" in done.stdout
    result = json.loads((tmp_path / "out" / "e2e.json").read_text())
    assert (tmp_path / "out" / "e2e-latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(result["raw"][k] > 0 for k in ("produce", "consume", "copy", "post"))
    latency = result["latency"]
    assert latency["incidents"] > 0
    assert latency["paged"] == latency["incidents"]  # every incident of the phase got its first page
    sustained = result["sustained"]
    assert sustained["accepted"] > 0
    assert sustained["refused"] == 0
    assert sustained["audit_rows_per_s"] > 0
    assert set(result["peak_memory_mib"]) == {"intake", "escalator", "notifier", "audit"}
    # Every part of the pipeline was seen working, and what an event costs each one is reported.
    parts = {"intake", "escalator", "notifier", "audit", "kafka", "postgres", "bench"}
    for phase in ("cpu_latency", "cpu_sustained"):
        assert set(result[phase]) == parts | {"total"}
        assert all(result[phase][p]["cores"] > 0 for p in parts), result[phase]
    assert result["cpu_latency"]["total"]["ms_per_event"] > result["cpu_latency"]["escalator"]["ms_per_event"] > 0
    assert len(result["table"]) == 10
