"""The run's webhook receiver: when each incident's first page arrived, and how many pages came."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass
class PageReceiver:
    """Listens on 127.0.0.1:`port`; `first[incident_id]` is the wall time of its first page."""

    port: int
    first: dict[str, float] = field(default_factory=dict)
    pages: int = 0
    raw: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        """A URL on this receiver."""
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> None:
        """Listen."""
        app = web.Application()
        app.router.add_post("/raw", self._raw)
        app.router.add_post("/{tail:.*}", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _raw(self, request: web.Request) -> web.Response:
        await request.read()
        self.raw += 1
        return web.Response(status=204)

    async def _page(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.pages += 1
        self.first.setdefault(str(body.get("incident_id")), time.time())
        return web.Response(status=204)
