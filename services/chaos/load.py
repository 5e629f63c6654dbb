"""Steady load through the intake's HTTP API, recording every event answered 202.

Each new incident is a trigger from one of many services; some are triggered again while open (a
duplicate), most are acknowledged or resolved shortly after, the rest are left to escalate.
A request that fails (503 while Kafka is away, a refused connection while an intake is down) is
sent again, to another intake, as a monitoring system would.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RETRIES = 5
RETRY_AFTER = 1.0  # seconds before a failed request is sent again
IN_FLIGHT = 64


@dataclass(frozen=True)
class Mix:
    """What becomes of a new incident: shares of duplicates, acknowledgements and resolutions."""

    duplicate: float = 0.2
    acknowledge: float = 0.35
    resolve: float = 0.35  # the rest (0.3 by default) is left to escalate
    settle_after: float = 0.5  # seconds after the trigger's 202; far below the policy's delay


@dataclass
class LoadRecord:
    """What the load sent and what the intake accepted."""

    accepted: dict[str, str] = field(default_factory=dict)  # event_id -> event_action
    accepted_keys: dict[str, str] = field(default_factory=dict)  # event_id -> incident key
    statuses: Counter[str] = field(default_factory=Counter)  # "202", "503", "connection", ...
    incidents: int = 0
    last_trigger_at: float = 0.0

    @property
    def sent(self) -> int:
        """Requests sent, retries included."""
        return sum(self.statuses.values())


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    body: dict[str, Any] = field(compare=False)
    attempt: int = field(compare=False, default=1)


class Load:
    """Sends `rate` events/s until stopped; `intakes()` names the intake URLs alive right now."""

    def __init__(
        self,
        intakes: Callable[[], list[str]],
        rate: float,
        services: list[str],
        run: str,
        seed: int,
        mix: Mix | None = None,
    ) -> None:
        self.intakes = intakes
        self.rate = rate
        self.services = services
        self.run = run
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible mix, not crypto
        self.mix = mix or Mix()
        self.record = LoadRecord()
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self._turn = itertools.count()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Stop sending new events (requests in flight finish)."""
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        """Send at the steady rate until `stop`, then wait for the requests in flight."""
        limit = asyncio.Semaphore(IN_FLIGHT)
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as http:
            start = time.monotonic()
            issued = 0
            while not self._stopping.is_set():
                budget = int((time.monotonic() - start) * self.rate) - issued
                for _ in range(max(0, budget)):
                    await limit.acquire()
                    issued += 1
                    task = asyncio.create_task(self._one(http, self._next(), limit))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(0.02)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _next(self) -> _Due:
        """A due follow-up or retry if there is one, else a new incident's trigger."""
        if self._queue and self._queue[0].at <= time.monotonic():
            return heapq.heappop(self._queue)
        n = next(self._seq)
        body = {
            "event_action": "trigger",
            "service": self.rng.choice(self.services),
            "dedup_key": f"{self.run}-{n}",
            "summary": f"chaos incident {n}",
            "severity": "critical",
        }
        return _Due(time.monotonic(), n, body)

    def _later(self, delay: float, body: dict[str, Any], attempt: int = 1) -> None:
        heapq.heappush(self._queue, _Due(time.monotonic() + delay, next(self._seq), body, attempt))

    async def _one(self, http: aiohttp.ClientSession, due: _Due, limit: asyncio.Semaphore) -> None:
        try:
            status, answer = await self._post(http, due.body)
        finally:
            limit.release()
        self.record.statuses[status] += 1
        if status != "202":
            if due.attempt < RETRIES:
                self._later(RETRY_AFTER, due.body, due.attempt + 1)
            return
        action = due.body["event_action"]
        event_id = str(answer["event_id"])
        self.record.accepted[event_id] = action
        self.record.accepted_keys[event_id] = str(answer["incident_key"])
        if action == "trigger":
            self.record.last_trigger_at = time.time()
            if due.body["summary"].startswith("chaos incident"):
                self._follow_ups(due.body)

    def _follow_ups(self, trigger: dict[str, Any]) -> None:
        """Decide what becomes of a just-accepted new incident."""
        if trigger.get("_followed"):
            return
        trigger["_followed"] = True
        self.record.incidents += 1
        ids = {"service": trigger["service"], "dedup_key": trigger["dedup_key"]}
        roll = self.rng.random()
        if self.rng.random() < self.mix.duplicate:
            dup = {"event_action": "trigger", **ids, "summary": "duplicate", "severity": "critical"}
            self._later(self.mix.settle_after / 2, dup)
        if roll < self.mix.acknowledge:
            self._later(self.mix.settle_after, {"event_action": "acknowledge", **ids, "actor": "chaos"})
        elif roll < self.mix.acknowledge + self.mix.resolve:
            self._later(self.mix.settle_after, {"event_action": "resolve", **ids, "actor": "chaos"})

    async def _post(self, http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        urls = self.intakes()
        if not urls:
            return "no intake", {}
        url = urls[next(self._turn) % len(urls)]
        wire = {k: v for k, v in body.items() if not k.startswith("_")}
        try:
            async with http.post(f"{url}/v1/events", json=wire) as response:
                if response.status == 202:
                    return "202", dict(await response.json())
                return str(response.status), {}
        except (aiohttp.ClientError, TimeoutError):
            return "connection", {}
