"""Audit service: persists every message in a hash chain, serves auditors their timelines, searches,
exports, evidence packs, verification and reports."""

# No `from __future__ import annotations`: FastAPI must see the closures' Depends objects in the
# route signatures, which string annotations would hide from it.
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AwareDatetime

from services.audit.consumer import AuditIngestor
from services.audit.csv_export import CSV_COLUMNS, csv_line, csv_row
from services.audit.migrate import migrate
from services.audit.reports import Bucket, GroupBy, incident_facts, series, summarize
from services.audit.signing import load_private_key, make_checkpoint
from services.audit.store import AuditStore, AuditStoreError, SearchFilter, use_writer_role
from services.audit.verify import pack_lines, verify_items
from services.console.router import Console
from shared.auth import AccessList, Principal, Role, load_access
from shared.http import PROBLEM_JSON, install_problem_handlers, ops_router, problem
from shared.kafka import Publisher, ensure_topics, make_producer
from shared.logging import get_logger
from shared.settings import AuditSettings

log = get_logger("audit")


_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The audit database is unavailable.", "content": {PROBLEM_JSON: {}}}
}


async def checkpoint_loop(store: AuditStore, key: Ed25519PrivateKey, every: float, stop: asyncio.Event) -> None:
    """Write a signed checkpoint every `every` seconds while anything changed, and once more at stop."""
    while True:
        stopping = False
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
            stopping = True
        except TimeoutError:
            pass
        try:
            await store.add_checkpoint(lambda heads, prev: make_checkpoint(key, heads, prev, datetime.now(UTC)))
        except AuditStoreError:
            log.exception("checkpoint failed; the next one covers it", loop="checkpoints")
        if stopping:
            return


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    """Build the audit service's ASGI app; ingestion and checkpoints run in its lifespan."""
    settings = settings or AuditSettings()
    access: AccessList = load_access(settings.escalation_config_dir)
    key = load_private_key(settings.audit_signing_key.get_secret_value()) if settings.audit_signing_key else None
    state: dict[str, Any] = {}
    auditor = Depends(access.dependency(Role.AUDITOR))
    console = Console(settings.escalation_config_dir, access, settings.database_url, settings.console_intake_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Migrations run as the login role (it owns the tables); the service's pool works as the writer.
        async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=1) as owner, owner.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("migrations applied", migrations=applied)
        if not access.enabled:
            log.warning("authentication is off: no tokens in the access section of the config folder")
        if key is None:
            log.warning("AUDIT_SIGNING_KEY not set: no signed checkpoints are written")
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=8, init=use_writer_role)
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions)
        publisher = Publisher.owning(lambda: make_producer(settings.kafka_bootstrap_servers, "audit"))
        await publisher.start()
        store = AuditStore(pool)
        ingestor = AuditIngestor(
            settings.kafka_bootstrap_servers,
            store,
            publisher,
            settings.audit_consumer_group,
            batch_wait_ms=settings.audit_batch_wait_ms,
        )
        await ingestor.start()
        stop = asyncio.Event()
        checkpoints = (
            asyncio.create_task(checkpoint_loop(store, key, settings.audit_checkpoint_seconds, stop))
            if key is not None
            else None
        )
        state.update(store=store, ingestor=ingestor, pool=pool)
        await console.start(pool)
        rotation = asyncio.create_task(access.watch(), name="access-watch")
        log.info("audit started", port=settings.audit_port)
        try:
            yield
        finally:
            rotation.cancel()
            await console.stop()
            await ingestor.stop()
            stop.set()
            if checkpoints is not None:
                await checkpoints  # the last batch's rows get a checkpoint before we exit
            await publisher.stop()
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except TimeoutError:  # a connection still checked out; nothing is left to write on it
                log.warning("database pool did not close in 10 s; terminating its connections")
                pool.terminate()
            log.info("audit stopped")

    async def health() -> dict[str, Any]:
        store: AuditStore | None = state.get("store")
        ingestor: AuditIngestor | None = state.get("ingestor")
        db_ok = store is not None and await store.ping()
        loop_ok = ingestor is not None and ingestor.task is not None and not ingestor.task.done()
        return {"database": "ok" if db_ok else "down", "ingestion": "ok" if loop_ok else "down"}

    app = FastAPI(
        title="Escalation audit",
        version="0.2.0",
        description=(
            "Complete, tamper-evident history of every incident: commands, decisions, deliveries. "
            "Read-only; needs a bearer token with the auditor (or admin) role when tokens are configured."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(ops_router(health))
    console.mount(app)

    def store_of() -> AuditStore:
        store: AuditStore = state["store"]
        return store

    def filters(
        service: str | None = None,
        team: str | None = None,
        priority: Annotated[str | None, Query(pattern=r"^P[1-5]$")] = None,
        actor: str | None = None,
        type: Annotated[str | None, Query(description="Message type, e.g. escalation.step_reached.")] = None,
        incident_id: uuid.UUID | None = None,
        since: Annotated[
            AwareDatetime | None, Query(description="From this instant (inclusive, ISO 8601 with zone).")
        ] = None,
        until: Annotated[AwareDatetime | None, Query(description="Up to this instant (exclusive).")] = None,
    ) -> SearchFilter:
        return SearchFilter(service, team, priority, actor, type, incident_id, since, until)

    @app.get("/v1/incidents/{incident_id}/timeline", responses={404: {"content": {PROBLEM_JSON: {}}}, **_UNAVAILABLE})
    async def timeline(incident_id: uuid.UUID, who: Annotated[Principal, auditor]) -> Response:
        """The ordered history of one incident: its commands, decisions and deliveries, with actors."""
        try:
            entries = await store_of().timeline(incident_id)
        except AuditStoreError as exc:
            return problem(503, "Audit database unavailable", str(exc), headers={"Retry-After": "5"})
        if not entries:
            return problem(404, "Unknown incident", f"no history for incident {incident_id}")
        return JSONResponse({"incident_id": str(incident_id), "entries": entries})

    @app.get("/v1/events", responses=_UNAVAILABLE)
    async def search(
        who: Annotated[Principal, auditor],
        query: Annotated[SearchFilter, Depends(filters)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int | None, Query(ge=0, description="`next` of the previous page.")] = None,
    ) -> Response:
        """Search the history; pages in ingestion order, `next` gives the following page."""
        try:
            items = await store_of().search(query, after, limit)
        except AuditStoreError as exc:
            return problem(503, "Audit database unavailable", str(exc), headers={"Retry-After": "5"})
        following = items[-1]["seq"] if len(items) == limit else None
        return JSONResponse({"items": items, "next": following})

    @app.get("/v1/export.jsonl", response_class=StreamingResponse)
    async def export_jsonl(
        who: Annotated[Principal, auditor], query: Annotated[SearchFilter, Depends(filters)]
    ) -> StreamingResponse:
        """The (filtered) history, one JSON object per line, in ingestion order; streamed, any size."""

        async def lines() -> AsyncIterator[bytes]:
            async for row in store_of().export(query=query):
                yield (json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get("/v1/export.csv", response_class=StreamingResponse)
    async def export_csv(
        who: Annotated[Principal, auditor], query: Annotated[SearchFilter, Depends(filters)]
    ) -> StreamingResponse:
        """The (filtered) history as CSV (payload as a JSON column); streamed, any size."""

        async def lines() -> AsyncIterator[bytes]:
            yield csv_line(list(CSV_COLUMNS))
            async for row in store_of().export(query=query):
                yield csv_line(csv_row(row))

        return StreamingResponse(
            lines(), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="audit.csv"'}
        )

    @app.get("/v1/evidence.jsonl", response_class=StreamingResponse)
    async def evidence(who: Annotated[Principal, auditor]) -> StreamingResponse:
        """An evidence pack: every row with its chain links, the checkpoints and the public key.
        `escalation audit verify --pack FILE` checks it offline."""
        public = key.public_key() if key is not None else None
        lines = pack_lines(store_of().evidence(), public, datetime.now(UTC).isoformat())
        return StreamingResponse(lines, media_type="application/x-ndjson")

    @app.get("/v1/verify", responses=_UNAVAILABLE)
    async def verify(who: Annotated[Principal, auditor]) -> Response:
        """Check every chain, the recorded heads and the signed checkpoints now; names the first bad row."""
        try:
            report = await verify_items(store_of().evidence(), key.public_key() if key is not None else None)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            return problem(503, "Audit database unavailable", repr(exc), headers={"Retry-After": "5"})
        return JSONResponse(
            {
                "ok": report.ok,
                "rows": report.rows,
                "chains": report.chains,
                "checkpoints": report.checkpoints,
                "key_id": report.key,
                "problems": report.problems,
                "notes": report.notes,
            }
        )

    @app.get("/v1/reports", responses=_UNAVAILABLE)
    async def reports(
        who: Annotated[Principal, auditor],
        by: GroupBy = GroupBy.SERVICE,
        since: Annotated[
            AwareDatetime | None, Query(description="Incidents opened from (default: 30 days ago).")
        ] = None,
        until: Annotated[AwareDatetime | None, Query(description="Incidents opened before (default: now).")] = None,
    ) -> Response:
        """Per service, team or priority: incidents, MTTA, MTTR, escalations per level, SLA, who acknowledged."""
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=30)
        if start >= end:
            return problem(422, "Invalid request", "since: must be before until", errors=[{"field": "since"}])
        try:
            facts = await incident_facts(state["pool"], start, end)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            return problem(503, "Audit database unavailable", repr(exc), headers={"Retry-After": "5"})
        lines = summarize(facts, by)
        return JSONResponse(
            {
                "by": by.value,
                "since": start.isoformat(),
                "until": end.isoformat(),
                "lines": [x.as_dict() for x in lines],
            }
        )

    @app.get("/v1/reports/series", responses=_UNAVAILABLE)
    async def report_series(
        who: Annotated[Principal, auditor],
        by: GroupBy = GroupBy.TEAM,
        bucket: Bucket = Bucket.DAY,
        since: Annotated[
            AwareDatetime | None, Query(description="Incidents opened from (default: 30 days ago).")
        ] = None,
        until: Annotated[AwareDatetime | None, Query(description="Incidents opened before (default: now).")] = None,
    ) -> Response:
        """MTTA and MTTR over time: per team, service or priority, one point per hour, day or week of
        opening (UTC; weeks from Monday), every bucket of the range present."""
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=30)
        if start >= end:
            return problem(422, "Invalid request", "since: must be before until", errors=[{"field": "since"}])
        try:
            facts = await incident_facts(state["pool"], start, end)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            return problem(503, "Audit database unavailable", repr(exc), headers={"Retry-After": "5"})
        try:
            points = series(facts, by, bucket, start, end)
        except ValueError as exc:
            return problem(422, "Invalid request", f"bucket: {exc}", errors=[{"field": "bucket", "message": str(exc)}])
        return JSONResponse(
            {
                "by": by.value,
                "bucket": bucket.value,
                "since": start.isoformat(),
                "until": end.isoformat(),
                "series": [{"group": g, "points": [p.as_dict() for p in pts]} for g, pts in points.items()],
            }
        )

    return app
