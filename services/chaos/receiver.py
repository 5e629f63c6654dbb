"""The run's webhook receiver: counts every accepted POST by idempotency key, and can fail on demand."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from aiohttp import web


class Mode(Enum):
    """How the receiver answers."""

    OK = "ok"
    FAIL = "500"  # answers 500 and records nothing
    CLOSED = "closed"  # not listening: connections are refused


@dataclass
class CountingReceiver:
    """Listens on 127.0.0.1:`port`; deduplicates nothing: `accepted[key]` counts raw 200 answers."""

    port: int
    accepted: Counter[str] = field(default_factory=Counter)
    step_of: dict[str, str] = field(default_factory=dict)
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    refused: int = 0
    mode: Mode = Mode.OK
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The webhook URL the run's policy pages."""
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        """Listen (again, after `close`)."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        self.mode = Mode.OK

    async def close(self) -> None:
        """Stop listening: senders get connection refused."""
        self.mode = Mode.CLOSED
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.mode is not Mode.OK:
            self.refused += 1
            return web.Response(status=500, text="failing on purpose")
        key = request.headers.get("Idempotency-Key", "")
        body = await request.json()
        self.accepted[key] += 1
        self.step_of.setdefault(key, str(body.get("step_id")))
        self.arrivals.setdefault(key, []).append(time.time())
        return web.json_response({"ok": True})
