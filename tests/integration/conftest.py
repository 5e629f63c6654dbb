"""Fixtures on the real test stack: a fresh PostgreSQL database per session, the Kafka broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.audit.migrate import migrate
from tests.integration.smtp_server import Mailbox, smtp_server
from tests.support import stack_env


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A new, empty database on the test PostgreSQL, dropped afterwards."""
    _, url = stack_env()
    name = f"it_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        # A new connection: a test may have restarted the server in between.
        admin = await asyncpg.connect(url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def scratch_database(database_url: str) -> AsyncIterator[str]:
    """A new database migrated to the audit schema, for one test (one that tampers with rows or
    restarts the server must not touch the others' data); dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{database_url.rsplit('/', 1)[0]}/{name}"
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await conn.close()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(database_url)  # a new connection: the server may have restarted
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the test broker."""
    bootstrap, _ = stack_env()
    return bootstrap


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Mailbox, int]]:
    """A real SMTP server on a free loopback port: its mailbox and port."""
    async with smtp_server() as served:
        yield served
