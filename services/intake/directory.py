"""Incident id -> incident key, learnt from `incident.opened` on escalations.events.

Operators name incidents by id; commands travel keyed by the incident key. Every intake instance
reads the opened events from the beginning into memory (about 150 bytes an incident) and follows
the topic; until it has read what was there at start, a lookup says so (the route answers 503).
"""

from __future__ import annotations

import uuid

import orjson

from shared.events import INCIDENT_OPENED
from shared.follow import TopicView
from shared.topics import ESCALATION_EVENTS


class NotReady(RuntimeError):
    """The directory has not read the history that existed when it started."""


class IncidentDirectory(TopicView):
    """Follows escalations.events without a consumer group (every instance reads everything)."""

    topic = ESCALATION_EVENTS
    what = "incident directory"
    # Read in batches (one fetch per 100 ms, not one per escalation event: at 250 events/s the
    # directory alone sent the broker about a hundred fetches a second). A lookup that misses
    # reads up to the topic's end before answering (`sync`), so a just-opened incident is found.
    batch_wait_ms = 100

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._keys: dict[uuid.UUID, str] = {}

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
