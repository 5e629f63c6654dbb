"""Incident id -> incident key, learnt from `incident.opened` on escalations.events.

Operators name incidents by id; commands travel keyed by the incident key. Every intake instance
reads the opened events from the beginning into memory (about 150 bytes an incident) and follows
the topic; until it has read what was there at start, a lookup says so (the route answers 503).
"""

from __future__ import annotations

import asyncio
import uuid

import orjson

from shared.events import INCIDENT_OPENED
from shared.follow import follow_topic
from shared.topics import ESCALATION_EVENTS


class NotReady(RuntimeError):
    """The directory has not read the history that existed when it started."""


class IncidentDirectory:
    """Follows escalations.events without a consumer group (every instance reads everything)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._keys: dict[uuid.UUID, str] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def learn(self, value: bytes | None) -> None:
        """Take one message of escalations.events; only `incident.opened` matters."""
        if value is None or INCIDENT_OPENED.encode() not in value:
            return
        try:
            message = orjson.loads(value)
            if message.get("type") == INCIDENT_OPENED:
                self._keys[uuid.UUID(str(message["incident_id"]))] = str(message["incident_key"])
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
            return  # not ours to judge: the audit dead-letters unreadable messages

    def key_of(self, incident_id: uuid.UUID) -> str | None:
        """The incident's key, None when no such incident was opened; NotReady while catching up."""
        key = self._keys.get(incident_id)
        if key is None and not self.ready.is_set():
            raise NotReady("still reading the incident history")
        return key

    def start(self) -> None:
        """Follow the topic in the background (retrying while Kafka is away)."""
        self._task = asyncio.create_task(self._run(), name="incident-directory")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        await follow_topic(self._bootstrap, ESCALATION_EVENTS, self.learn, self.ready, "incident directory")
