"""The native routes' fast path hands the app every request it does not answer, with every byte."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from services.intake.fast_path import NativeFastPath

LIMIT = 10_000


class Downstream:
    """The app behind the fast path: records what reached it, answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await Response(b"app", 299)(scope, receive, send)


class Route:
    """A fast route that answers 202, or declines (None) when told to."""

    def __init__(self, decline: bool = False) -> None:
        self.decline = decline
        self.calls: list[tuple[Any, str | None]] = []

    async def __call__(self, data: Any, authorization: str | None) -> Response | None:
        self.calls.append((data, authorization))
        return None if self.decline else Response(b"fast", 202)


def _scope(path: str = "/v1/events", method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    if headers is None:
        headers = [(b"content-type", b"application/json")]
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": headers}


async def _call(
    scope: Scope, chunks: list[bytes], route: Route, after: list[Message] | None = None
) -> tuple[Downstream, list[Message]]:
    """Run one request through the fast path; the body in `chunks`, then `after` (else disconnects)."""
    messages: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or bool(after)}
        for i, c in enumerate(chunks)
    ]
    messages += after or []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    app = Downstream()
    await NativeFastPath(app, {"/v1/events": route}, LIMIT)(scope, receive, send)
    return app, sent


def _status(sent: list[Message]) -> int:
    return int(sent[0]["status"])


async def test_an_accepted_request_is_answered_without_the_app_from_its_chunks() -> None:
    route = Route()
    app, sent = await _call(
        _scope(headers=[(b"content-type", b"application/json; charset=utf-8"), (b"authorization", b"Bearer k")]),
        [b'{"a": ', b"[1, 2]", b"}"],
        route,
    )
    assert route.calls == [({"a": [1, 2]}, "Bearer k")]
    assert _status(sent) == 202
    assert app.bodies == []


async def test_a_declined_request_reaches_the_app_with_the_body_it_sent() -> None:
    route = Route(decline=True)
    app, sent = await _call(_scope(), [b'{"a":', b" 1}"], route)
    assert route.calls == [({"a": 1}, None)]
    assert app.bodies == [b'{"a": 1}']
    assert _status(sent) == 299


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"a": ' + b"9" * 30 + b"}", {"a": 10**30 - 1}),
        (b'{"a": "\\ud800"}', {"a": "\ud800"}),
        (b"\xef\xbb\xbf[1]", [1]),
    ],
    ids=["big-int", "lone-surrogate", "bom"],
)
async def test_the_route_gets_the_body_as_the_app_would_read_it(body: bytes, parsed: Any) -> None:
    # As json.loads reads it (Starlette's Request.json): the routes' own validation judges the value.
    route = Route()
    await _call(_scope(), [body], route)
    assert route.calls == [(parsed, None)]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"\xff", b"[" * 4000 + b"]" * 4000, b"9" * 5000],
    ids=["empty", "broken", "not-utf8", "deep", "long-int"],
)
async def test_a_body_that_is_not_json_goes_to_the_app_unread_by_the_route(body: bytes) -> None:
    route = Route()
    app, sent = await _call(_scope(), [body], route)
    assert route.calls == []
    assert app.bodies == [body]
    assert _status(sent) == 299


async def test_a_streamed_body_over_the_limit_reaches_the_app_whole() -> None:
    route = Route()
    chunks = [b"x" * 4000, b"y" * 4000, b"z" * 4000]
    app, sent = await _call(_scope(), chunks, route)
    assert route.calls == []
    assert app.bodies == [b"".join(chunks)]  # the app's body limit answers it, as without the fast path
    assert _status(sent) == 299


async def test_a_client_leaving_mid_body_is_seen_by_the_app() -> None:
    route = Route()
    app, _ = await _call(_scope(), [b'{"a": 1', b"2"], route, after=[{"type": "http.disconnect"}])
    # The body was not complete when the client left: the app reads both chunks, then the disconnect.
    app_types = [m["type"] for m in app.messages]
    assert route.calls == []
    assert app_types == ["http.request", "http.request", "http.disconnect"]


@pytest.mark.parametrize(
    "scope",
    [
        _scope(method="GET"),
        _scope(path="/v1/events/"),
        _scope(path="/v2/enqueue"),
        _scope(headers=[(b"content-type", b"application/vnd.x+json")]),
        _scope(headers=[(b"content-type", b"text/plain")]),
        _scope(headers=[]),
        _scope(headers=[(b"content-type", b"application/json"), (b"content-length", str(LIMIT + 1).encode())]),
        {**_scope(), "root_path": "/intake"},
    ],
    ids=["get", "trailing-slash", "other-route", "json-suffix", "text", "no-content-type", "declared-over", "mounted"],
)
async def test_other_requests_reach_the_app_untouched(scope: Scope) -> None:
    route = Route()
    app, sent = await _call(scope, [b'{"a": 1}'], route)
    assert route.calls == []
    assert app.bodies == [b'{"a": 1}']
    assert _status(sent) == 299
