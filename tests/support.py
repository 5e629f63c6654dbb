"""Helpers shared by integration and end-to-end tests (no mocks: real Kafka, PostgreSQL, HTTP)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    import httpx

    from shared.envelope import Envelope
    from shared.settings import IntakeSettings

T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


ONE_LEVEL_POLICY = """
services:
  {service}:
    escalation_policy: one-level
policies:
  one-level:
    levels:
      - name: infrastructure
        delay: {delay}s
        targets: [{{type: webhook, name: infrastructure, url: "{url}"}}]
"""


def one_level_policy(service: str, delay: float, url: str = "http://127.0.0.1:9/none") -> str:
    """YAML of one service whose incidents reach one webhook level after `delay` seconds."""
    return ONE_LEVEL_POLICY.format(service=service, delay=delay, url=url)


def stack_env() -> tuple[str, str]:
    """Return (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL) of the running test stack."""
    kafka, database = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if not kafka or not database:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are unset: run the tests through ./scripts/test")
    return kafka, database


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float, what: str, every: float = 0.2) -> T:
    """Re-run `check` until it returns something other than None; fail after `timeout` seconds.

    For conditions only observable by asking (a database row, an HTTP resource), not a fixed sleep.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result is not None:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def publish_opened(
    bootstrap: str, service: str, dedup: str, summary: str = "down", priority: str = "P3"
) -> Envelope:
    """Publish an `incident.opened` to escalations.events as the escalator would (the intake's
    directory learns incident ids from it); return it (its incident id is its trigger's event id)."""
    from datetime import UTC, datetime

    from shared import events as ev
    from shared.envelope import new_envelope
    from shared.kafka import Publisher, make_producer
    from shared.topics import ESCALATION_EVENTS

    key = f"{service}/{dedup}"
    trigger = new_envelope(
        ev.TRIGGER, ev.Trigger(service=service, dedup_key=dedup, summary=summary), incident_key=key,
        occurred_at=datetime.now(UTC),
    )  # fmt: skip
    opened = new_envelope(
        ev.INCIDENT_OPENED,
        ev.IncidentOpened(
            service=service,
            dedup_key=dedup,
            summary=summary,
            severity=ev.Severity.ERROR,
            policy_id="p",
            policy_hash="h",
            priority=priority,
        ),
        incident_key=key,
        occurred_at=datetime.now(UTC),
        incident_id=trigger.event_id,
        cause=trigger,
    )
    producer = make_producer(bootstrap, "test-opened")
    await producer.start()
    try:
        await Publisher(producer).publish(ESCALATION_EVENTS, opened)
    finally:
        await producer.stop()
    return opened


async def intake_client(settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on an intake app in this process, its lifespan (Kafka producer) running."""
    import httpx

    from services.intake.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield client
