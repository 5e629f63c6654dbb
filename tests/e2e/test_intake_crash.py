"""Killing intake right after it answered 202 loses nothing: the event is in the audit log."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from services.stack import processes
from tests.e2e.conftest import Stack
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def test_event_answered_202_survives_kill_9_of_intake(stack: Stack, http: httpx.AsyncClient) -> None:
    proc = stack.process("intake")
    pid = processes.read_pid(proc.pid_file)
    assert pid is not None
    body = {
        "event_action": "trigger",
        "service": stack.service,
        "dedup_key": f"kill-{uuid.uuid4().hex[:6]}",
        "summary": "accepted just before the crash",
    }
    response = await http.post(f"{stack.url('intake')}/v1/events", json=body)
    assert response.status_code == 202
    event_id = uuid.UUID(response.json()["event_id"])
    processes.kill_hard(pid)

    conn = await asyncpg.connect(stack.env["DATABASE_URL"])
    try:

        async def stored() -> str | None:
            row: str | None = await conn.fetchval("SELECT type FROM audit_log WHERE event_id = $1", event_id)
            return row

        assert await eventually(stored, 60, "the 202'd event in the audit log") == "incident.trigger"
    finally:
        await conn.close()
        stack.start("intake")
