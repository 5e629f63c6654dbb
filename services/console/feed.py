"""Which incidents changed, as the audit writer announces them: PostgreSQL LISTEN on one connection per
process, fanned out to every open console stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from services.audit.store import CHANGES_CHANNEL, EVERYTHING
from shared.logging import get_logger

log = get_logger("console")

CHANNEL = CHANGES_CHANNEL


class Changes:
    """One stream's pending changes: incident ids, or `everything`."""

    def __init__(self) -> None:
        self.ids: set[uuid.UUID] = set()
        self.everything = False
        self.ready = asyncio.Event()

    def add(self, payload: str) -> None:
        """Record one notification."""
        if payload == EVERYTHING:
            self.everything = True
        else:
            for part in payload.split(","):
                with contextlib.suppress(ValueError):
                    self.ids.add(uuid.UUID(part))
        self.ready.set()

    def take(self) -> tuple[bool, set[uuid.UUID]]:
        """The pending changes, cleared."""
        everything, ids = self.everything, self.ids
        self.everything, self.ids = False, set()
        self.ready.clear()
        return everything, ids


class ChangeFeed:
    """Listens on the writer's channel and hands each notification to every subscriber."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        self._connect = connect
        self._subscribers: set[Changes] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def subscribe(self) -> Changes:
        """A new subscriber's changes (unsubscribe when done)."""
        changes = Changes()
        self._subscribers.add(changes)
        return changes

    def unsubscribe(self, changes: Changes) -> None:
        """Stop handing changes to a subscriber."""
        self._subscribers.discard(changes)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for changes in self._subscribers:
            changes.add(payload)

    def start(self) -> None:
        """Start listening (reconnecting when the connection drops)."""
        self._task = asyncio.create_task(self._run(), name="console-feed")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                if not first:  # whatever changed while no connection listened: every stream reloads
                    self._on_notify(None, 0, CHANNEL, EVERYTHING)
                first = False
                await lost.wait()
                log.warning("console change feed lost its connection; reconnecting", loop="console-feed")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("console change feed cannot listen; retrying", loop="console-feed")
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=5)
            await asyncio.sleep(1.0)
