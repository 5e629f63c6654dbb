"""Deliveries that wait (a notification rule's delay, a retry's backoff) live in Kafka, not in a
sleeping task: a receiver that is down holds up nobody else's page, a delayed page survives a
kill -9 of the notifier and arrives once, and an acknowledgement drops the pages still waiting,
also when the notifier reads the step and the acknowledgement again after the kill (the e2e
notifier commits its offsets rarely, so a kill -9 always makes it read its events again)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from services.stack import processes
from tests.e2e.conftest import PAGER_DELAY, Stack, timeline
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def _trigger(http: httpx.AsyncClient, stack: Stack, service: str, dedup: str) -> str:
    body = {"event_action": "trigger", "service": service, "dedup_key": dedup, "summary": dedup, "severity": "critical"}
    response = await http.post(f"{stack.url('intake')}/v1/events", json=body)
    assert response.status_code == 202, response.text
    incident: str = response.json()["event_id"]
    return incident


async def _act(http: httpx.AsyncClient, stack: Stack, action: str, service: str, dedup: str) -> None:
    body = {"event_action": action, "service": service, "dedup_key": dedup, "actor": "e2e"}
    response = await http.post(f"{stack.url('intake')}/v1/events", json=body)
    assert response.status_code == 202, response.text


def _pages(stack: Stack, path: str, incident: str) -> list[Any]:
    return [r for r in stack.receiver.received if r.path == path and r.body.get("incident_id") == incident]


async def test_a_receiver_that_is_down_holds_up_nobody_elses_page(stack: Stack, http: httpx.AsyncClient) -> None:
    run = uuid.uuid4().hex[:6]
    dead = await _trigger(http, stack, f"{stack.service}-dead", f"dead-{run}")

    async def failed_attempts(count: int) -> list[dict[str, Any]] | None:
        entries = await timeline(http, stack, dead)
        failed = [e for e in entries if e["type"] == "notification.failed"]
        return failed if len(failed) >= count else None

    await eventually(lambda: failed_attempts(2), 60, "the dead receiver's first retry")
    # The dead receiver's retries go on; a page for another incident goes out at its own time.
    alive = await _trigger(http, stack, f"{stack.service}-people", f"alive-{run}")
    await eventually(
        lambda: _present(_pages(stack, "/pager/now", alive)), 30, "the page of the other incident while one retries"
    )
    still = await eventually(lambda: failed_attempts(3), 60, "the dead receiver's retries to go on")
    assert max(e["payload"]["attempt"] for e in still) >= 3
    assert not any(e["payload"]["final"] for e in still)
    await _act(http, stack, "resolve", f"{stack.service}-dead", f"dead-{run}")  # drops its waiting retry
    await _act(http, stack, "resolve", f"{stack.service}-people", f"alive-{run}")


async def test_a_delayed_page_survives_kill_9_and_an_acknowledgement_drops_one(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    run = uuid.uuid4().hex[:6]
    service = f"{stack.service}-people"
    loop = asyncio.get_running_loop()
    wall_minus_loop = time.time() - loop.time()  # to read the receiver's loop-clock stamps as wall time

    # An incident acknowledged before its delayed page is due: the page never goes out.
    acked = await _trigger(http, stack, service, f"acked-{run}")
    await eventually(lambda: _present(_pages(stack, "/pager/now", acked)), 60, "the first page of the acked one")
    await _act(http, stack, "acknowledge", service, f"acked-{run}")
    await eventually(lambda: _of_type(http, stack, acked, "incident.acknowledged"), 60, "the acknowledgement")

    # One whose receiver refuses every page, resolved while its retries go on.
    refused = await _trigger(http, stack, f"{stack.service}-dead", f"refused-{run}")
    await eventually(lambda: _present(_refused(stack, refused)), 60, "a refused attempt")
    await _act(http, stack, "resolve", f"{stack.service}-dead", f"refused-{run}")
    await eventually(lambda: _of_type(http, stack, refused, "incident.resolved"), 60, "the resolve")

    # Another one; once its first page is recorded, its delayed page is in Kafka: kill -9 the notifier.
    kept = await _trigger(http, stack, service, f"kept-{run}")
    entries = await eventually(
        lambda: _of_type(http, stack, kept, "notification.delivered"), 60, "the first page recorded"
    )
    step_at = next(e for e in entries if e["type"] == "escalation.step_reached")["occurred_at"]
    pid = processes.read_pid(stack.process("notifier").pid_file)
    assert pid is not None
    processes.kill_hard(pid)
    attempts_of_refused = len(_refused(stack, refused))
    stack.start("notifier")

    later = await eventually(
        lambda: _present(_pages(stack, "/pager/later", kept)), 60 + PAGER_DELAY, "the delayed page after the restart"
    )
    keys = Counter(r.headers["Idempotency-Key"] for r in _pages(stack, "/pager/later", kept))
    assert list(keys.values()) == [1]
    sent_at = later[0].at + wall_minus_loop
    assert sent_at >= _epoch(step_at) + PAGER_DELAY - 0.5  # not before its rule's delay (clock slack)
    # The acknowledged incident's delayed page was due before this one's, and never came: the
    # restarted notifier read its step again (writing the wait again) and its acknowledgement after.
    assert _pages(stack, "/pager/later", acked) == []
    # Nor was the resolved incident's page tried again, though its step was read again too.
    assert len(_refused(stack, refused)) == attempts_of_refused
    await _act(http, stack, "resolve", service, f"kept-{run}")
    await _act(http, stack, "resolve", service, f"acked-{run}")


def _refused(stack: Stack, incident: str) -> list[Any]:
    return [r for r in stack.refusing.refused if r.body.get("incident_id") == incident]


async def _present(items: list[Any]) -> list[Any] | None:
    return items or None


async def _of_type(http: httpx.AsyncClient, stack: Stack, incident: str, type_: str) -> list[dict[str, Any]] | None:
    entries = await timeline(http, stack, incident)
    return entries if any(e["type"] == type_ for e in entries) else None


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
