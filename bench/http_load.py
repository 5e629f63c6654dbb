"""A lean HTTP/1.1 load client: keep-alive connections, requests encoded before the clock starts.

The benchmarks run the load generator on the same two cores as the service it measures. aiohttp's
client spent about as much CPU per request as the intake spent answering it, so the figure said
more about the client than the intake; a production intake's clients run elsewhere. This client
writes pre-built request bytes and reads each answer's status line, headers and body with one
connection per request in flight (no pipelining), the way `wrk` does.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit


def post_request(url: str, body: bytes, content_type: str = "application/json") -> bytes:
    """The bytes of one POST of `body` to `url` on a kept-alive connection."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class UnexpectedAnswer(RuntimeError):
    """An answer other than the one expected (its status line and body are in the message)."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


@dataclass(frozen=True)
class LoadResult:
    """Requests answered per second, and the client's own CPU time per request (microseconds)."""

    per_second: float
    client_cpu_us: float


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process only, not the services it started
    return usage.ru_utime + usage.ru_stime


async def closed_loop(url: str, requests: list[bytes], connections: int, expect: int = 202) -> LoadResult:
    """Send every request over `connections` kept-alive connections, one in flight on each."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue: Iterator[bytes] = iter(requests)
    opened = [await asyncio.open_connection(host, port) for _ in range(connections)]

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for request in queue:
            writer.write(request)
            status, body = await _read_answer(reader)
            if status != expect:
                raise UnexpectedAnswer(f"{status}: {body[:300]!r}")

    cpu = _own_cpu()
    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(r, w) for r, w in opened))
    finally:
        elapsed = time.perf_counter() - start
        for _, writer in opened:
            writer.close()
    return LoadResult(len(requests) / elapsed, (_own_cpu() - cpu) / len(requests) * 1e6)


class ConnectionPool:
    """Kept-alive connections for an open-loop load: each request takes a free one (one in flight on each)."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._size = size
        self._free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def __aenter__(self) -> ConnectionPool:
        for _ in range(self._size):
            self._free.put_nowait(await asyncio.open_connection(self._host, self._port))
        return self

    async def __aexit__(self, *_: object) -> None:
        while not self._free.empty():
            self._free.get_nowait()[1].close()

    async def send(self, request: bytes, expect: int = 202) -> None:
        """Send one request on a free connection and read its answer."""
        reader, writer = await self._free.get()
        writer.write(request)
        status, body = await _read_answer(reader)
        self._free.put_nowait((reader, writer))
        if status != expect:
            raise UnexpectedAnswer(f"{status}: {body[:300]!r}")
