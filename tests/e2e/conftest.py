"""The four services as separate processes against the real broker and database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.stack import processes
from services.webhook_receiver import WebhookReceiver
from tests.support import free_port, one_level_policy, stack_env

# The policy the end-to-end tests run under: one level, reached after ESCALATION_DELAY seconds.
ESCALATION_DELAY = 3.0
# A heartbeat monitor of the stack, on a service of its own (no policy: its incidents page nobody).
HEARTBEAT = "e2e-heartbeat"
HEARTBEAT_INTERVAL = 2.0
# The people services: level 1 at once to a user paged by webhook now and by a second webhook
# PAGER_DELAY later (a notification rule's delay), and a service whose only receiver is down.
PAGER_DELAY = 8.0
PEOPLE = """
services:
  {service}-people:
    escalation_policy: page-the-pager
  {service}-dead:
    escalation_policy: page-the-dead
policies:
  page-the-pager:
    levels:
      - name: on call
        delay: 0s
        targets: [{{type: user, id: e2e-pager}}]
  page-the-dead:
    levels:
      - name: nobody home
        delay: 0s
        targets: [{{type: webhook, name: dead, url: "{dead}"}}]
users:
  e2e-pager:
    contact_methods:
      - {{type: webhook, address: "{now}", name: now}}
      - {{type: webhook, address: "{later}", name: later}}
    notification_rules:
      - {{urgency: high, contact: now}}
      - {{urgency: high, contact: later, delay: {delay}s}}
"""


@dataclass
class Stack:
    """Handles on the running services of one test session."""

    state_dir: Path
    env: dict[str, str]
    service: str
    receiver: WebhookReceiver
    refusing: WebhookReceiver  # the "dead" receiver: answers 503 to everything, and counts it

    def process(self, name: str) -> processes.ServiceProcess:
        """The process record of one service."""
        return processes.ServiceProcess(name, self.state_dir, processes.port_of(name, self.env))

    def url(self, name: str) -> str:
        """Base URL of one service."""
        return f"http://127.0.0.1:{processes.port_of(name, self.env)}"

    def start(self, name: str) -> None:
        """Start one service (again) and wait until it is healthy."""
        processes.start(self.process(name), self.env)
        processes.wait_healthy(self.process(name))


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A real webhook receiver on a free loopback port."""
    rec = WebhookReceiver()
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture(scope="session")
async def refusing() -> AsyncIterator[WebhookReceiver]:
    """A real webhook receiver that answers 503 to every request (and records it)."""
    rec = WebhookReceiver(status=503)
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture(scope="session")
def stack(
    receiver: WebhookReceiver, refusing: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Start intake, escalator, notifier and audit as processes; stop them at the end."""
    kafka, database = stack_env()
    run = uuid.uuid4().hex[:8]
    root = tmp_path_factory.mktemp("e2e")
    config = root / "config"
    config.mkdir()
    (config / "e2e.yaml").write_text(one_level_policy(f"e2e-{run}", ESCALATION_DELAY, receiver.url("hook")))
    (config / "heartbeats.yaml").write_text(
        f"heartbeats:\n  {HEARTBEAT}:\n    service: e2e-{run}-heartbeat\n    interval: {HEARTBEAT_INTERVAL}s\n"
    )
    (config / "people.yaml").write_text(
        PEOPLE.format(
            service=f"e2e-{run}",
            now=receiver.url("pager/now"),
            later=receiver.url("pager/later"),
            dead=refusing.url("nobody-home"),
            delay=PAGER_DELAY,
        )
    )
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        DATABASE_URL=database,
        ESCALATION_CONFIG_DIR=str(config),
        ESCALATOR_DATA_DIR=str(root / "escalator"),
        LOG_LEVEL="INFO",
        # The notifier commits rarely: a kill -9 makes it read its escalation events again, the
        # path where a re-read step must not page for an incident settled after it.
        NOTIFIER_COMMIT_INTERVAL_SECONDS="60",
    )
    for name in processes.SERVICES:
        env[processes.PORT_VARS[name]] = str(free_port())
    # Notifications carry signed acknowledge/resolve links to this intake.
    env.update(LINK_SECRET=f"e2e-links-{run}", NOTIFIER_LINK_BASE_URL=f"http://127.0.0.1:{env['INTAKE_PORT']}")
    handle = Stack(state_dir=root, env=env, service=f"e2e-{run}", receiver=receiver, refusing=refusing)
    try:
        for name in processes.SERVICES:
            processes.start(handle.process(name), env)
        for name in processes.SERVICES:
            processes.wait_healthy(handle.process(name), timeout=120)
        yield handle
    finally:
        for name in reversed(processes.SERVICES):
            processes.stop(handle.process(name))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the services."""
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


async def timeline(http: httpx.AsyncClient, stack: Stack, incident_id: str) -> list[dict[str, Any]]:
    """Return the audit timeline of an incident (empty while unknown)."""
    response = await http.get(f"{stack.url('audit')}/v1/incidents/{incident_id}/timeline")
    if response.status_code == 404:
        return []
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries
