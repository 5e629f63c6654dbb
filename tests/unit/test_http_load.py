"""The benchmarks' lean HTTP/1.1 load client (bench/http_load.py) against a real aiohttp server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bench.http_load import ConnectionPool, UnexpectedAnswer, closed_loop, post_request
from tests.support import free_port


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A server that answers 202 with a JSON body, or 500 for a body asking for it; records bodies."""
    seen: list[dict[str, object]] = []

    async def events(request: web.Request) -> web.Response:
        body = await request.json()
        assert request.transport is not None
        seen.append({**body, "peer": str(request.transport.get_extra_info("peername"))})
        if body.get("fail"):
            return web.Response(status=500, text="broken on purpose")
        return web.json_response({"status": "accepted", "n": body["n"]}, status=202)

    app = web.Application()
    app.router.add_post("/v1/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_every_request_is_sent_once_over_kept_alive_connections(
    server: tuple[str, list[dict[str, object]]],
) -> None:
    url, seen = server
    requests = [post_request(f"{url}/v1/events", json.dumps({"n": i}).encode()) for i in range(200)]
    result = await closed_loop(url, requests, connections=4)
    assert sorted(int(str(b["n"])) for b in seen) == list(range(200))
    assert result.per_second > 0
    assert result.client_cpu_us > 0
    assert len({b["peer"] for b in seen}) == 4


async def test_an_unexpected_status_stops_the_load_with_the_answer(server: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = server
    requests = [post_request(f"{url}/v1/events", json.dumps({"n": 1, "fail": True}).encode())]
    with pytest.raises(UnexpectedAnswer, match="500: b'broken on purpose'"):
        await closed_loop(url, requests, connections=1)


async def test_the_pool_reuses_its_connections_for_an_open_loop(server: tuple[str, list[dict[str, object]]]) -> None:
    url, seen = server
    async with ConnectionPool(url, 2) as pool:
        for i in range(10):
            await pool.send(post_request(f"{url}/v1/events", json.dumps({"n": i}).encode()))
    assert len(seen) == 10
    assert len({b["peer"] for b in seen}) <= 2  # no connection opened per request
