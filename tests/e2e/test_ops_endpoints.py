"""Every service answers /healthz and Prometheus /metrics, and logs JSON lines."""

from __future__ import annotations

import json

import httpx
import pytest

from services.stack import processes
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

METRIC_OF = {
    "intake": "intake_events_accepted_total",
    "escalator": "escalator_commands_total",
    "notifier": "notifier_attempts_total",
    "audit": "audit_rows_inserted_total",
}


@pytest.mark.parametrize("name", processes.SERVICES)
async def test_healthz_and_metrics(stack: Stack, http: httpx.AsyncClient, name: str) -> None:
    health = await http.get(f"{stack.url(name)}/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    metrics = await http.get(f"{stack.url(name)}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert f"# TYPE {METRIC_OF[name]} counter" in metrics.text


@pytest.mark.parametrize("name", processes.SERVICES)
def test_logs_are_json_lines_naming_the_service(stack: Stack, name: str) -> None:
    text = stack.process(name).log_file.read_text()
    complete = text[: text.rfind("\n") + 1]  # the service may be writing its last line right now
    lines = [line for line in complete.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    assert {r["service"] for r in records} == {name}
    assert all("timestamp" in r and "level" in r for r in records)
