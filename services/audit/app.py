"""Audit service: persists every message, serves incident timelines to auditors."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse

from services.audit.consumer import AuditIngestor
from services.audit.migrate import migrate
from services.audit.store import AuditStore, AuditStoreError
from shared.http import PROBLEM_JSON, install_problem_handlers, ops_router, problem
from shared.kafka import Publisher, ensure_topics, make_producer
from shared.logging import get_logger
from shared.settings import AuditSettings

log = get_logger("audit")


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    """Build the audit service's ASGI app; ingestion runs in its lifespan."""
    settings = settings or AuditSettings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=8)
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        if applied:
            log.info("migrations applied", migrations=applied)
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions)
        producer = make_producer(settings.kafka_bootstrap_servers, "audit")
        await producer.start()
        store = AuditStore(pool)
        ingestor = AuditIngestor(settings.kafka_bootstrap_servers, store, Publisher(producer))
        await ingestor.start()
        state.update(store=store, ingestor=ingestor)
        log.info("audit started", port=settings.audit_port)
        try:
            yield
        finally:
            await ingestor.stop()
            await producer.stop()
            await pool.close()
            log.info("audit stopped")

    async def health() -> dict[str, Any]:
        store: AuditStore | None = state.get("store")
        ingestor: AuditIngestor | None = state.get("ingestor")
        db_ok = store is not None and await store.ping()
        loop_ok = ingestor is not None and ingestor.task is not None and not ingestor.task.done()
        return {"database": "ok" if db_ok else "down", "ingestion": "ok" if loop_ok else "down"}

    app = FastAPI(
        title="Escalation audit",
        version="0.1.0",
        description="Complete history of every incident: commands, decisions and deliveries.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(ops_router(health))

    @app.get(
        "/v1/incidents/{incident_id}/timeline",
        responses={404: {"description": "No history for this incident.", "content": {PROBLEM_JSON: {}}}},
    )
    async def timeline(incident_id: uuid.UUID) -> Response:
        """Return the ordered history of one incident."""
        store: AuditStore = state["store"]
        try:
            entries = await store.timeline(incident_id)
        except AuditStoreError as exc:
            return problem(503, "Audit database unavailable", str(exc), headers={"Retry-After": "5"})
        if not entries:
            return problem(404, "Unknown incident", f"no history for incident {incident_id}")
        return JSONResponse({"incident_id": str(incident_id), "entries": entries})

    @app.get("/v1/export.jsonl", response_class=StreamingResponse)
    async def export_jsonl() -> StreamingResponse:
        """Stream the whole history, one envelope per line, in ingestion order (any size)."""
        store: AuditStore = state["store"]

        async def lines() -> AsyncIterator[bytes]:
            async for row in store.export():
                yield (json.dumps(row, separators=(",", ":")) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app
