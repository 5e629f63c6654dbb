"""Intake service: validate what monitoring systems send, write it to Kafka, answer 202."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from services.intake.models import Accepted, AnyEvent, NativeEvent, TriggerEvent
from shared import events as ev
from shared.envelope import new_envelope
from shared.http import PROBLEM_JSON, install_problem_handlers, ops_router, problem
from shared.ids import incident_key, uuid7
from shared.kafka import Publisher, PublishError, ensure_topics, make_producer
from shared.logging import get_logger
from shared.settings import IntakeSettings
from shared.topics import INCIDENT_COMMANDS

log = get_logger("intake")

ACCEPTED = Counter("intake_events_accepted_total", "Events written to Kafka and answered 202", ["action"])
REJECTED = Counter("intake_events_unavailable_total", "Events answered 503 because Kafka did not acknowledge")
PUBLISH_SECONDS = Histogram("intake_publish_seconds", "Time until Kafka acknowledged one event")

RETRY_AFTER_SECONDS = 5


class KafkaLink:
    """The intake's producer, started lazily so the API is up (and says 503) while Kafka is not."""

    def __init__(self, settings: IntakeSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def publisher(self) -> Publisher:
        """Return a publisher on a started producer, or raise PublishError."""
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self._settings.kafka_bootstrap_servers, "intake")
                try:
                    await producer.start()
                    await ensure_topics(self._settings.kafka_bootstrap_servers, self._settings.topic_partitions)
                except (KafkaError, OSError) as exc:
                    await producer.stop()
                    raise PublishError(f"Kafka unreachable: {exc!r}") from exc
                self._producer = producer
        return Publisher(self._producer)

    @property
    def connected(self) -> bool:
        """True once the producer has started."""
        return self._producer is not None

    async def close(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _command(event: AnyEvent) -> tuple[str, BaseModel, str]:
    """Translate a native request into (command type, payload, dedup key)."""
    if isinstance(event, TriggerEvent):
        dedup = event.dedup_key or str(uuid7())
        payload: BaseModel = ev.Trigger(
            service=event.service,
            dedup_key=dedup,
            summary=event.summary,
            severity=event.severity,
            source=event.source,
            custom_details=event.custom_details,
        )
        return ev.TRIGGER, payload, dedup
    type_, model = ev.ACTIONS[event.event_action]  # the body carries exactly the payload's fields
    payload = model.model_validate(event.model_dump(exclude={"event_action"}))
    return type_, payload, event.dedup_key


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    """Build the intake's ASGI app."""
    settings = settings or IntakeSettings()
    link = KafkaLink(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await link.publisher()
        except PublishError as exc:
            log.warning("Kafka not reachable at start; answering 503 until it is", error=str(exc))
        log.info("intake started", port=settings.intake_port)
        try:
            yield
        finally:
            await link.close()  # uvicorn has drained in-flight requests before this runs
            log.info("intake stopped")

    async def health() -> dict[str, Any]:
        return {"kafka": "ok" if link.connected else "down"}

    app = FastAPI(
        title="Escalation intake",
        version="0.1.0",
        description="Accepts incident events from monitoring systems and operators.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(ops_router(health))

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses={
            422: {"description": "Invalid event; the body names the field.", "content": {PROBLEM_JSON: {}}},
            503: {
                "description": "Kafka did not acknowledge; retry after the given seconds.",
                "content": {PROBLEM_JSON: {}},
            },
        },
    )
    async def post_event(event: NativeEvent) -> Response:
        """Accept one native event; 202 only once Kafka acknowledged the write."""
        try:
            type_, payload, dedup = _command(event)
        except ValidationError as exc:  # cross-field rules of the command (e.g. reassign: policy or team)
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or event.event_action
            return problem(
                422, "Invalid request", f"{field}: {first['msg']}", errors=[{"field": field, "message": first["msg"]}]
            )
        key = incident_key(event.service, dedup)
        env = new_envelope(type_, payload, incident_key=key, occurred_at=datetime.now(UTC))
        try:
            publisher = await link.publisher()
            with PUBLISH_SECONDS.time():
                await publisher.publish(INCIDENT_COMMANDS, env)
        except PublishError as exc:
            REJECTED.inc()
            log.warning("event not accepted: Kafka unavailable", event_id=str(env.event_id), error=str(exc))
            return problem(
                503,
                "Kafka unavailable",
                "The event was not stored; send it again.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        ACCEPTED.labels(event.event_action).inc()
        log.info("event accepted", event_id=str(env.event_id), incident_key=key, type=type_)
        body = Accepted(event_id=env.event_id, incident_key=key, dedup_key=dedup)
        return JSONResponse(body.model_dump(mode="json"), status_code=202)

    return app
