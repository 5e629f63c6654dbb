"""kill -9 of the notifier in the middle of a burst of escalations, then a restart: every escalation
is delivered, and a receiver that counts by idempotency key counts each exactly once.

A page the receiver took in the instant before the kill, before the notifier could record it, is
sent again after the restart, under the same key: no sender can know what a receiver got while
the sender was dying. Pages already recorded as delivered are not sent again (the ledger)."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest

from services.stack import processes
from tests.e2e.conftest import ESCALATION_DELAY, Stack
from tests.support import eventually

pytestmark = pytest.mark.e2e

BURST = 30


async def test_kill_9_mid_burst_loses_nothing_and_pages_nobody_twice(stack: Stack, http: httpx.AsyncClient) -> None:
    run = uuid.uuid4().hex[:6]
    incidents: set[str] = set()
    for i in range(BURST):
        body = {
            "event_action": "trigger",
            "service": stack.service,
            "dedup_key": f"burst-{run}-{i}",
            "summary": "burst",
        }
        response = await http.post(f"{stack.url('intake')}/v1/events", json=body)
        assert response.status_code == 202
        incidents.add(response.json()["event_id"])  # the trigger's id is the incident's id

    def mine() -> list[str]:
        return [r.headers["Idempotency-Key"] for r in stack.receiver.received if r.body.get("incident_id") in incidents]

    async def some() -> bool | None:
        return True if mine() else None

    # The steps come ESCALATION_DELAY after the triggers; kill as soon as the first page arrived.
    await eventually(some, timeout=60 + ESCALATION_DELAY, what="the first page of the burst", every=0.01)
    pid = processes.read_pid(stack.process("notifier").pid_file)
    assert pid is not None
    processes.kill_hard(pid)
    at_kill = len(mine())
    stack.start("notifier")

    async def all_paged() -> list[str] | None:
        keys = mine()
        return keys if len(set(keys)) >= BURST else None

    await eventually(all_paged, timeout=120, what=f"pages for all {BURST} incidents")
    keys_of: dict[str, set[str]] = {}
    for r in stack.receiver.received:
        if r.body.get("incident_id") in incidents:
            keys_of.setdefault(r.body["incident_id"], set()).add(r.headers["Idempotency-Key"])
    assert set(keys_of) == incidents  # nothing lost
    assert all(len(keys) == 1 for keys in keys_of.values())  # one key per page: counted once
    resent = sum(Counter(mine()).values()) - BURST
    print(f"kill -9 after {at_kill} of {BURST} pages; {resent} sent again under their key")
