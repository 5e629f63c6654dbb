"""A real HTTP webhook receiver that records what it gets: for the demo and the tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


def _lenient_json(text: str) -> dict[str, Any]:
    """The JSON object of a request it refuses, else {} (a refusal never fails on the body)."""
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class WebhookReceiver:
    """Listens on 127.0.0.1:port; answers `status` (200 unless told to fail). `received` holds the
    requests it took, `refused` those it answered with a failure."""

    port: int = 0
    status: int = 200
    received: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> None:
        """Start listening; `port` 0 picks a free port."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "hook") -> str:
        """Return the URL of a path on this receiver."""
        return f"http://127.0.0.1:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        if self.status >= 300:
            body = await request.json(loads=_lenient_json)
            at = asyncio.get_running_loop().time()
            self.refused.append(Received(request.path, dict(request.headers), body, at))
            return web.Response(status=self.status)
        body = await request.json()
        async with self._changed:
            self.received.append(Received(request.path, dict(request.headers), body, asyncio.get_running_loop().time()))
            self._changed.notify_all()
        return web.json_response({"ok": True}, status=self.status)

    async def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Wait until at least `count` requests arrived; raise TimeoutError otherwise."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= count), timeout)
            return list(self.received)
