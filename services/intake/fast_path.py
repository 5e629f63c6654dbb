"""The native event routes without FastAPI's per-request machinery, for the requests they accept.

Under load, routing, dependency resolution and FastAPI's body handling cost about two thirds of a
single-event request's CPU (py-spy, bench/intake.py). This ASGI app, in front of the FastAPI app
and its middleware (app.FrontedFastAPI), answers `POST /v1/events` and `POST /v1/events/batch`
itself when the request is one the routes accept: a JSON body within the size limit, a sender the
access list admits, an event that validates. Any other request, and any of these that is not
accepted before a side effect (tokens spent, Kafka written), is passed on whole to the FastAPI app,
which answers it as it always did: its 401, 403, 413 and 422 problems stay the only ones there are.
The routes stay declared in the FastAPI app, so the OpenAPI document does not change.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake.body_limit import replay_body

FastRoute = Callable[[Any, str | None], Awaitable[Response | None]]
"""Takes the parsed JSON body and the Authorization header; returns the answer, or None to pass the
request on to the FastAPI app (only before any side effect)."""


class NativeFastPath:
    """ASGI middleware: the routes in `routes` (path -> FastRoute) for POST requests with a JSON body;
    everything else goes to `app`."""

    def __init__(self, app: ASGIApp, routes: dict[str, FastRoute], limit: int) -> None:
        self.app, self.routes, self.limit = app, routes, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        content_type = length = authorization = None
        for name, value in scope["headers"]:
            if name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"content-length" and length is None:
                length = value
            elif name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
        if not _is_json(content_type) or (length is not None and (not length.isdigit() or int(length) > self.limit)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, complete = 0, False
        while not complete:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it as it would
                await self.app(scope, replay_body(chunks, receive, last=message), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            complete = not message.get("more_body", False)
            if size > self.limit:
                await self.app(scope, replay_body(chunks, receive, more=not complete), send)
                return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        answer = None
        try:
            # Parsed as the app parses it (Starlette's Request.json), so a route sees the same value:
            # orjson, 2 us faster here, reads an integer over 64 bits as a float.
            data = json.loads(body)
        except (ValueError, RecursionError):
            pass  # the app answers with its own problem naming the body
        else:
            answer = await route(data, authorization)
        if answer is None:
            await self.app(scope, replay_body([body], receive), send)
            return
        await answer(scope, receive, send)


def _is_json(content_type: bytes | None) -> bool:
    """True for `application/json`, with parameters or not (anything else: the app decides)."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json"
