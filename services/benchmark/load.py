"""A realistic mix through the intake's batch API at a steady rate.

Per 100 events: about 30 new incidents (triggers from many services), 45 repeated triggers of open
ones (a monitoring system re-sending a firing alert), 12 acknowledgements and 13 resolutions of
incidents triggered at least a second before, picked at random. Every incident is paged at once
(a zero-delay level); the ones nobody settles escalate to the next levels after the policy's delays.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

BATCH = 100
SENDERS = 8


@dataclass
class LoadFigures:
    """What the load sent and what was accepted, and when each incident's trigger was sent."""

    accepted: int = 0
    refused: int = 0
    triggered_at: dict[str, float] = field(default_factory=dict)  # incident id -> wall time the trigger left
    per_second: dict[int, int] = field(default_factory=dict)  # whole second of the run -> events accepted


class BatchLoad:
    """Sends `rate` events/s in batches of BATCH from SENDERS concurrent clients."""

    def __init__(self, intake: str, rate: float, services: list[str], seed: int, token: str | None = None) -> None:
        self._url = f"{intake}/v1/events/batch"
        self._rate = rate
        self._services = services
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not crypto
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._recent: deque[tuple[float, str, str]] = deque()  # (sent at, service, dedup key), newest last
        self._settleable: list[tuple[str, str]] = []  # open incidents at least a second old
        self._seq = 0
        self.figures = LoadFigures()

    def _batch(self, now: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while self._recent and self._recent[0][0] < now - 1.0:  # a second old: may be settled now
            _, service, dedup = self._recent.popleft()
            self._settleable.append((service, dedup))
        for _ in range(BATCH):
            roll = self._rng.random()
            if roll < 0.25 and self._settleable:
                pick = self._rng.randrange(len(self._settleable))
                self._settleable[pick], self._settleable[-1] = self._settleable[-1], self._settleable[pick]
                service, dedup = self._settleable.pop()
                action = "acknowledge" if roll < 0.12 else "resolve"
                events.append({"event_action": action, "service": service, "dedup_key": dedup, "actor": "bench"})
            elif roll < 0.70 and (self._recent or self._settleable):
                service, dedup = self._recent[-1][1:] if self._recent else self._settleable[-1]
                events.append({"event_action": "trigger", "service": service, "dedup_key": dedup, "summary": "again"})
            else:
                self._seq += 1
                service = self._services[self._seq % len(self._services)]
                dedup = f"b{self._seq}"
                self._recent.append((now, service, dedup))
                events.append(
                    {
                        "event_action": "trigger",
                        "service": service,
                        "dedup_key": dedup,
                        "summary": f"{service} failing",
                        "severity": "critical",
                    }
                )
        return events

    async def run(self, seconds: float, started: float) -> None:
        """Send for `seconds`; `started` (wall time) numbers the per-second counts."""
        interval = BATCH / self._rate
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        slots = iter(range(10**9))
        connector = aiohttp.TCPConnector(limit=SENDERS)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def sender() -> None:
                for slot in slots:
                    at = t0 + slot * interval
                    if at - t0 >= seconds:
                        return
                    wait = at - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)  # pacing the generator
                    await self._send(session, started)

            await asyncio.gather(*(sender() for _ in range(SENDERS)))

    async def _send(self, session: aiohttp.ClientSession, started: float) -> None:
        now = time.time()
        events = self._batch(now)
        try:
            async with session.post(self._url, json={"events": events}, headers=self._headers) as response:
                body = await response.json(content_type=None)
                ok = response.status == 202
        except (aiohttp.ClientError, TimeoutError):
            ok, body = False, None
        if not ok or not isinstance(body, dict):
            self.figures.refused += len(events)
            return
        accepted = body.get("events", [])
        self.figures.accepted += len(accepted)
        second = int(time.time() - started)
        self.figures.per_second[second] = self.figures.per_second.get(second, 0) + len(accepted)
        for sent, answer in zip(events, accepted, strict=False):
            if sent["event_action"] == "trigger" and sent.get("summary") != "again":
                self.figures.triggered_at[str(answer["event_id"])] = now
