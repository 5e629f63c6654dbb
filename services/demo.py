"""`escalation demo`: trigger an incident on the running stack and watch it escalate."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import httpx

from services.webhook_receiver import WebhookReceiver


async def _timeline(client: httpx.AsyncClient, audit: str, incident_id: str, want: int, timeout: float) -> list[Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    entries: list[Any] = []
    while loop.time() < deadline:
        response = await client.get(f"{audit}/v1/incidents/{incident_id}/timeline")
        if response.status_code == 200:
            entries = response.json()["entries"]
            if sum(e["type"] == "notification.delivered" for e in entries) >= want:
                return entries
        await asyncio.sleep(0.5)
    return entries


async def run_demo(receiver_port: int, timeout: float, echo: Callable[[str], None]) -> int:
    """Run the demo; return the process exit code."""
    intake = f"http://127.0.0.1:{os.environ.get('INTAKE_PORT', '8081')}"
    audit = f"http://127.0.0.1:{os.environ.get('AUDIT_PORT', '8084')}"
    receiver = WebhookReceiver(port=receiver_port)
    await receiver.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            event = {
                "event_action": "trigger",
                "service": "checkout-api",
                "summary": "Checkout API returns 502 for 40% of requests",
                "severity": "critical",
                "source": "demo",
            }
            response = await client.post(f"{intake}/v1/events", json=event)
            if response.status_code != 202:
                echo(f"intake answered {response.status_code}: {response.text}")
                return 1
            accepted = response.json()
            echo(f"triggered: event {accepted['event_id']} key {accepted['incident_key']}")
            echo("nobody acknowledges; waiting for the policy to page frontline, then escalate ...")
            for level in (1, 2):
                got = await receiver.wait_for(level, timeout)
                hook = got[level - 1]
                echo(
                    f"  webhook {hook.path}: level {hook.body['level']} ({hook.body['target']}) "
                    f"paged for incident {hook.body['incident_id']}"
                )
            incident_id = got[0].body["incident_id"]
            entries = await _timeline(client, audit, incident_id, 2, timeout)
            echo(f"audit timeline of incident {incident_id}:")
            for e in entries:
                echo(f"  {e['occurred_at']}  {e['type']:<26} {e['topic']}")
            return 0
    except TimeoutError:
        echo("timed out waiting; see `escalation stack status` and the logs under .stack/logs")
        return 1
    finally:
        await receiver.stop()
