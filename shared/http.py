"""HTTP pieces every FastAPI service shares: problem+json errors, /healthz and /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Return an RFC 9457 problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def rule_problem(exc: ValidationError, prefix: str = "") -> JSONResponse:
    """422 for a rule a route checks after FastAPI's own validation (e.g. reassign: policy or team),
    naming the field under `prefix` (e.g. `events.3` in a batch)."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "") or "body"
    message = str(first.get("msg", "invalid"))
    return problem(422, "Invalid request", f"{field}: {message}", errors=[{"field": field, "message": message}])


def _field(error: dict[str, Any]) -> str:
    parts = [str(p) for p in error.get("loc", ())]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        # The field at fault is the discriminator itself (e.g. event_action), not the whole body.
        parts.append(str(error.get("ctx", {}).get("discriminator", "")).strip("'"))
    return ".".join(p for p in parts if p) or "body"


async def _validation_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e), "message": e.get("msg", "invalid")} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid request", detail, errors=errors)


_UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's words for a body json.loads refused


async def _http_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        # Bytes that are not UTF-8, nesting too deep to parse, an integer of over 4,300 digits: a
        # validation error of the body like any other, named and documented as the routes' 422.
        return problem(
            422,
            "Invalid request",
            "The body is not readable JSON.",
            errors=[{"field": "body", "message": "not readable JSON (invalid UTF-8, too deep, or a number too long)"}],
        )
    return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


def install_problem_handlers(app: FastAPI) -> None:
    """Make every validation and HTTP error answer as problem+json naming the field at fault."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)


def ops_router(health: HealthCheck) -> APIRouter:
    """Return the router of /healthz (503 while a dependency is down) and /metrics."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> Response:
        checks = await health()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
