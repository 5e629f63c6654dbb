"""Refuse request bodies over a size limit with 413 problem+json, before the app reads them."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http import PROBLEM_JSON


class BodyLimit:
    """ASGI middleware: a declared or streamed body larger than `limit` bytes gets 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        if declared is not None:  # the server reads no more than the declared length
            await self.app(scope, receive, send)
            return
        # A streamed body (no Content-Length) is read here, up to the limit, before the app sees it:
        # refused from inside the app's body parsing, it came out as that route's 422, not a 413.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it as it would
                await self.app(scope, replay_body(chunks, receive, last=message), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay_body(chunks, receive), send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Request body too large",
                "status": 413,
                "detail": f"the body may be at most {self.limit} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def replay_body(chunks: list[bytes], receive: Receive, *, last: Message | None = None, more: bool = False) -> Receive:
    """A receive that gives the app the body already read, then what `receive` gives.

    `last`: a message read after the chunks (a disconnect) to hand on after them; `more`: the body
    goes on past the chunks.
    """
    queue: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": more or last is not None or i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if last is not None:
        queue.append(last)

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed
