"""A heartbeat monitor end to end: the ping through intake, the missed interval noticed by the
escalator's timer, the incident it opens, and the next ping resolving it, read back from the audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import HEARTBEAT, HEARTBEAT_INTERVAL, Stack
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def _events(http: httpx.AsyncClient, stack: Stack, **query: str) -> list[dict[str, Any]]:
    response = await http.get(f"{stack.url('audit')}/v1/events", params={**query, "limit": "1000"})
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_missed_heartbeat_opens_an_incident_and_the_next_ping_resolves_it(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    service = f"{stack.service}-heartbeat"
    ping = await http.post(f"{stack.url('intake')}/v1/heartbeats/{HEARTBEAT}")
    assert ping.status_code == 202, ping.text
    assert ping.json()["interval_seconds"] == HEARTBEAT_INTERVAL
    assert ping.json()["incident_key"] == f"{service}/heartbeat-monitor:{HEARTBEAT}"

    async def opened() -> dict[str, Any] | None:
        found = await _events(http, stack, service=service, type="incident.opened")
        return found[0] if found else None

    incident = await eventually(opened, timeout=60, what="the incident of the missed heartbeat")
    assert incident["incident_key"] == f"{service}/heartbeat:{HEARTBEAT}"
    assert incident["payload"]["severity"] == "critical"
    assert incident["payload"]["summary"] == f"Heartbeat {HEARTBEAT} missed: no ping for {int(HEARTBEAT_INTERVAL)} s"
    # The escalator's timer, not the ping's arrival, opened it: one interval after the ping at least.
    [ping_row] = await _events(http, stack, service=service, type="heartbeat.ping")
    silent = datetime.fromisoformat(incident["occurred_at"]) - datetime.fromisoformat(ping_row["occurred_at"])
    assert silent >= timedelta(seconds=HEARTBEAT_INTERVAL)

    again = await http.post(f"{stack.url('intake')}/v1/heartbeats/{HEARTBEAT}")
    assert again.status_code == 202

    async def resolved() -> dict[str, Any] | None:
        found = await _events(http, stack, incident_id=incident["incident_id"], type="incident.resolved")
        return found[0] if found else None

    closing = await eventually(resolved, timeout=60, what="the heartbeat incident resolved by the next ping")
    assert closing["payload"]["actor"] == f"heartbeat:{HEARTBEAT}"
    # Exactly one incident opened for the monitor so far.
    assert len(await _events(http, stack, service=service, type="incident.opened")) == 1


async def test_an_unknown_heartbeat_is_a_404_problem(http: httpx.AsyncClient, stack: Stack) -> None:
    response = await http.post(f"{stack.url('intake')}/v1/heartbeats/no-such-monitor")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "no-such-monitor" in response.json()["detail"]
