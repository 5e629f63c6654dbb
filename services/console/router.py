"""The console's HTTP side: its static pages under /console/ and its JSON under /v1/console/, mounted
into the audit service (same database, same tokens)."""

# No `from __future__ import annotations`: FastAPI must see the closures' Depends objects.
import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
import httpx
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AwareDatetime, BaseModel, Field

from services.audit.store import AuditStore, AuditStoreError
from services.console.config import ConfigFolder
from services.console.feed import ChangeFeed
from services.console.oncall import on_call_now
from services.console.policies import MAX_SCRIPT_BYTES, catalog_view, run_script
from services.console.readmodel import IncidentQuery, incident_detail, incidents_by_id, list_incidents
from services.console.settings import intake_url
from services.console.shutdown import ShutdownSignal
from shared.auth import AccessList, Principal, Role
from shared.http import PROBLEM_JSON, problem
from shared.logging import get_logger
from shared.yamlconfig import ConfigError

log = get_logger("console")

STATIC = Path(__file__).parent / "static"
# A live stream ends after this long (the page reconnects at once), so none outlives a deploy for long.
STREAM_LIFETIME = timedelta(minutes=10)
KEEPALIVE_SECONDS = 15.0
ACTIONS = ("acknowledge", "resolve", "escalate", "snooze", "reassign", "notes")
_DB_ERRORS = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError)
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The audit database is unavailable.", "content": {PROBLEM_JSON: {}}}
}


class SimulateBody(BaseModel):
    """A `policy simulate` script, as its YAML text."""

    script: str = Field(min_length=1, max_length=MAX_SCRIPT_BYTES, description="YAML: start, watch, events.")


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Console:
    """The console's routes and the live feed they share; `mount` it on the audit app."""

    def __init__(
        self,
        config_dir: Path,
        access: AccessList,
        database_url: str,
        intake: str | None = None,
    ) -> None:
        self.intake_url = intake_url(intake)
        self.config = ConfigFolder(config_dir)
        self.access = access
        self.feed = ChangeFeed(lambda: asyncpg.connect(database_url))
        self.shutdown = ShutdownSignal()
        self._pool: asyncpg.Pool | None = None
        self._http: httpx.AsyncClient | None = None

    async def start(self, pool: asyncpg.Pool) -> None:
        """Begin listening for changes; open the client that forwards actions to the intake."""
        self._pool = pool
        self._http = httpx.AsyncClient(base_url=self.intake_url, timeout=10.0)
        self.shutdown.install()
        self.feed.start()

    async def stop(self) -> None:
        """End every stream and stop listening."""
        self.shutdown.uninstall()
        await self.feed.stop()
        if self._http is not None:
            await self._http.aclose()

    @property
    def pool(self) -> asyncpg.Pool:
        """The audit service's pool."""
        assert self._pool is not None, "console not started"
        return self._pool

    def mount(self, app: FastAPI) -> None:
        """Add the JSON routes, the static pages and their security headers to `app`."""
        app.include_router(self.router())

        @app.get("/console", include_in_schema=False)
        async def console_root() -> Response:
            return RedirectResponse("/console/")

        @app.middleware("http")
        async def console_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            response = await call_next(request)
            if request.url.path.startswith("/console"):
                response.headers["Content-Security-Policy"] = _CSP
                response.headers["X-Content-Type-Options"] = "nosniff"
                response.headers["Referrer-Policy"] = "no-referrer"
                response.headers["Cache-Control"] = "no-cache"
            return response

        app.mount("/console", StaticFiles(directory=STATIC, html=True), name="console")

    def router(self) -> APIRouter:
        """The console's JSON API."""
        router = APIRouter(prefix="/v1/console", tags=["console"])
        reader = Depends(self.access.dependency(Role.RESPONDER, Role.AUDITOR))

        def query(
            service: str | None = None,
            team: str | None = None,
            priority: Annotated[str | None, Query(pattern=r"^P[1-5]$")] = None,
            state: Literal["open", "triggered", "acknowledged", "snoozed", "resolved"] | None = None,
            since: Annotated[
                AwareDatetime | None,
                Query(description="Incidents opened from (default: 7 days ago); open ones are listed however old."),
            ] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 200,
            incident_id: Annotated[uuid.UUID | None, Query(description="Only this incident.")] = None,
        ) -> IncidentQuery:
            start = since or datetime.now(UTC) - timedelta(days=7)
            return IncidentQuery(service, team, priority, state, start, limit, incident_id)

        @router.get("/me")
        async def me(who: Annotated[Principal, reader]) -> dict[str, Any]:
            """Who the token belongs to and its role (null: authentication is off)."""
            return {"name": who.name, "role": who.role.value if who.role else None, "auth": self.access.enabled}

        @router.get("/options")
        async def options(who: Annotated[Principal, reader]) -> dict[str, Any]:
            """What the filters and forms offer: services, teams, policies, priorities, states."""
            loaded = self.config.current()
            services = sorted(loaded.catalog.services) if loaded.catalog else []
            policies = sorted(loaded.catalog.policies) if loaded.catalog else []
            teams = sorted(loaded.directory.teams) if loaded.directory else []
            return {
                "services": services,
                "teams": teams,
                "policies": policies,
                "priorities": ["P1", "P2", "P3", "P4", "P5"],
                "states": ["open", "triggered", "acknowledged", "snoozed", "resolved"],
            }

        @router.get("/incidents", responses=_UNAVAILABLE)
        async def incidents(who: Annotated[Principal, reader], q: Annotated[IncidentQuery, Depends(query)]) -> Response:
            """The latest incidents (newest first) with their state, level, teams and next escalation."""
            now = datetime.now(UTC)
            try:
                items = await list_incidents(self.pool, self.config.current().catalog, q, now)
            except _DB_ERRORS as exc:
                return problem(503, "Audit database unavailable", repr(exc), headers={"Retry-After": "5"})
            return JSONResponse({"items": [v.as_dict() for v in items], "now": now.isoformat()})

        @router.get("/incidents/{incident_id}", responses={404: {"content": {PROBLEM_JSON: {}}}, **_UNAVAILABLE})
        async def incident(incident_id: uuid.UUID, who: Annotated[Principal, reader]) -> Response:
            """One incident with its clocks: next escalation and SLA, from the escalator's core."""
            now = datetime.now(UTC)
            try:
                found = await incident_detail(self.pool, self.config.current().catalog, incident_id, now)
            except _DB_ERRORS as exc:
                return problem(503, "Audit database unavailable", repr(exc), headers={"Retry-After": "5"})
            if found is None:
                return problem(404, "Unknown incident", f"no incident {incident_id} opened")
            return JSONResponse(found)

        @router.get(
            "/incidents/{incident_id}/timeline", responses={404: {"content": {PROBLEM_JSON: {}}}, **_UNAVAILABLE}
        )
        async def timeline(incident_id: uuid.UUID, who: Annotated[Principal, reader]) -> Response:
            """The incident's audit timeline (as `GET /v1/incidents/{id}/timeline`), for responders too."""
            try:
                entries = await AuditStore(self.pool).timeline(incident_id)
            except AuditStoreError as exc:
                return problem(503, "Audit database unavailable", str(exc), headers={"Retry-After": "5"})
            if not entries:
                return problem(404, "Unknown incident", f"no history for incident {incident_id}")
            return JSONResponse({"incident_id": str(incident_id), "entries": entries})

        @router.get("/stream", response_class=StreamingResponse)
        async def stream(
            who: Annotated[Principal, reader], q: Annotated[IncidentQuery, Depends(query)]
        ) -> StreamingResponse:
            """Server-sent events: `snapshot` (the list as `GET /incidents` gives it), then `upsert`
            (incidents that changed and match) and `remove` (that changed and no longer match), as the
            audit log commits them; a comment line every 15 s keeps the connection open."""
            return StreamingResponse(
                self._events(q),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )

        @router.post(
            "/incidents/{incident_id}/{action}",
            status_code=202,
            responses={
                401: {"content": {PROBLEM_JSON: {}}},
                403: {"content": {PROBLEM_JSON: {}}},
                404: {"content": {PROBLEM_JSON: {}}},
                503: {"content": {PROBLEM_JSON: {}}},
            },
        )
        async def act(
            incident_id: uuid.UUID,
            action: Annotated[Literal[ACTIONS], PathParam(description="The intake's operator action.")],  # type: ignore[valid-type]
            request: Request,
        ) -> Response:
            """Forward an operator action, with the caller's own token, to the intake (which checks the
            role and records the token holder as the actor); its answer comes back as it was."""
            assert self._http is not None
            headers = {"content-type": request.headers.get("content-type", "application/json")}
            if "authorization" in request.headers:
                headers["authorization"] = request.headers["authorization"]
            body = await request.body()
            try:
                answer = await self._http.post(f"/v1/incidents/{incident_id}/{action}", content=body, headers=headers)
            except httpx.HTTPError as exc:
                return problem(503, "Intake unreachable", f"{self.intake_url}: {exc!r}", headers={"Retry-After": "5"})
            passed = {k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
            return Response(
                answer.content,
                status_code=answer.status_code,
                media_type=answer.headers.get("content-type"),
                headers=passed,
            )

        @router.get("/oncall")
        async def oncall(who: Annotated[Principal, reader]) -> Response:
            """Per schedule: who is on call now, until when, and the next hand-offs."""
            loaded = self.config.current()
            if loaded.directory is None:
                return problem(503, "Directory unavailable", loaded.directory_error)
            now = datetime.now(UTC)
            return JSONResponse({"now": now.isoformat(), "schedules": on_call_now(loaded.directory, now)})

        @router.get("/policies")
        async def policies(who: Annotated[Principal, reader]) -> Response:
            """Every service's policy as a ladder of levels."""
            loaded = self.config.current()
            if loaded.catalog is None:
                return problem(503, "Policies unavailable", loaded.catalog_error)
            return JSONResponse(catalog_view(loaded.catalog))

        @router.post("/simulate", responses={422: {"content": {PROBLEM_JSON: {}}}})
        async def simulate(who: Annotated[Principal, reader], body: Annotated[SimulateBody, Body()]) -> Response:
            """`escalation policy simulate` on the script: who is paged when, on a virtual clock."""
            loaded = self.config.current()
            if loaded.catalog is None:
                return problem(503, "Policies unavailable", loaded.catalog_error)
            try:
                result = await asyncio.to_thread(run_script, loaded.catalog, body.script)
            except ConfigError as exc:
                field = f"script.{exc.field}" if exc.field else "script"
                where = f"line {exc.line}: " if exc.line is not None else ""
                message = f"{where}{exc.field or 'script'}: {exc.message}"
                return problem(
                    422, "Invalid script", message, errors=[{"field": field, "line": exc.line, "message": exc.message}]
                )
            return JSONResponse(result)

        return router

    async def _events(self, q: IncidentQuery) -> AsyncIterator[bytes]:
        changes = self.feed.subscribe()
        loop = asyncio.get_running_loop()
        ends = loop.time() + STREAM_LIFETIME.total_seconds()
        stopping = asyncio.ensure_future(self.shutdown.event.wait())
        shown: set[str] = set()  # the incidents the client lists: only these can be removed
        try:
            yield await self._snapshot(q, shown)
            while loop.time() < ends and not self.shutdown.event.is_set():
                ready = asyncio.ensure_future(changes.ready.wait())
                done, _ = await asyncio.wait(
                    {ready, stopping}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                ready.cancel()
                if stopping in done:
                    break
                if ready not in done:
                    yield b": keepalive\n\n"
                    continue
                everything, ids = changes.take()
                if everything:
                    yield await self._snapshot(q, shown)
                    continue
                now = datetime.now(UTC)
                try:
                    views = await incidents_by_id(self.pool, self.config.current().catalog, sorted(ids), now)
                except _DB_ERRORS:
                    log.exception("console stream cannot read incidents; the next change retries")
                    continue
                keep = [v.as_dict() for v in views if q.admits(v)]
                # Incidents of other lists that changed are none of this client's business.
                drop = [v.incident_id for v in views if not q.admits(v) and str(v.incident_id) in shown]
                shown.update(str(v.incident_id) for v in views if q.admits(v))
                shown.difference_update(str(i) for i in drop)
                if keep:
                    yield _sse("upsert", {"items": keep, "now": now.isoformat()})
                if drop:
                    yield _sse("remove", {"ids": drop, "now": now.isoformat()})
        finally:
            stopping.cancel()
            self.feed.unsubscribe(changes)

    async def _snapshot(self, q: IncidentQuery, shown: set[str]) -> bytes:
        """The list as it is now; `shown` becomes the ids the client has."""
        now = datetime.now(UTC)
        try:
            items = await list_incidents(self.pool, self.config.current().catalog, q, now)
        except _DB_ERRORS as exc:
            return _sse("problem", {"title": "Audit database unavailable", "detail": repr(exc)})
        shown.clear()
        shown.update(str(v.incident_id) for v in items)
        return _sse("snapshot", {"items": [v.as_dict() for v in items], "now": now.isoformat()})
