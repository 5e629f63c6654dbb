"""Intake service: validate what monitoring systems and operators send, write it to Kafka, answer 202."""

# No `from __future__ import annotations`: FastAPI must see the closures' Depends objects in the
# route signatures, which string annotations would hide from it.
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake.body_limit import BodyLimit
from services.intake.context import SENDERS, Intake
from services.intake.directory import IncidentDirectory
from services.intake.fast_path import NativeFastPath
from services.intake.formats.pagerduty import MAX_BODY_BYTES
from services.intake.heartbeats import heartbeats_router, load_heartbeats
from services.intake.integrations import integrations_router
from services.intake.kafka_link import KafkaLink
from services.intake.models import Accepted, AnyEvent, NativeEvent, TriggerEvent
from services.intake.operator_routes import operator_router
from shared import events as ev
from shared.auth import Principal, load_access
from shared.envelope import Envelope
from shared.heap import settle_heap
from shared.http import PROBLEM_JSON, install_problem_handlers, ops_router, rule_problem
from shared.ids import uuid7
from shared.kafka import PublishError
from shared.links import LinkSigner
from shared.logging import configure_logging, get_logger
from shared.ratelimit import TokenBuckets
from shared.settings import IntakeSettings

log = get_logger("intake")

MAX_BATCH = 1000
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown token.", "content": {PROBLEM_JSON: {}}},
    403: {"description": "The token may not send this.", "content": {PROBLEM_JSON: {}}},
    413: {"description": "Body over 512 KB.", "content": {PROBLEM_JSON: {}}},
    422: {"description": "Invalid event; the body names the field.", "content": {PROBLEM_JSON: {}}},
    429: {"description": "Over the rate limit; retry after the given seconds.", "content": {PROBLEM_JSON: {}}},
    503: {"description": "Kafka did not acknowledge; retry after the given seconds.", "content": {PROBLEM_JSON: {}}},
}


class Batch(BaseModel):
    """Up to 1,000 native events in one request."""

    events: list[NativeEvent] = Field(min_length=1, max_length=MAX_BATCH)


class BatchAccepted(BaseModel):
    """Every event of the batch is durably in Kafka, in the order sent."""

    status: str = "accepted"
    events: list[Accepted]


Command = tuple[str, BaseModel, str, str]
"""(command type, payload, service, dedup key)"""

_NATIVE_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(NativeEvent)


def _accepted(env: Envelope, command: Command) -> dict[str, str]:
    """The body of `Accepted` for one written command."""
    return {
        "status": "accepted",
        "event_id": str(env.event_id),
        "incident_key": env.incident_key,
        "dedup_key": command[3],
    }


def _json(status: int, body: dict[str, Any]) -> Response:
    """A JSON response (orjson: the batch answer lists up to 1,000 events)."""
    return Response(orjson.dumps(body), status, media_type="application/json")


def to_command(event: AnyEvent) -> Command:
    """Translate a native event into (command type, payload, service, dedup key); ValidationError on rules."""
    if isinstance(event, TriggerEvent):
        dedup = event.dedup_key or str(uuid7())
        payload: BaseModel = ev.Trigger(
            service=event.service,
            dedup_key=dedup,
            summary=event.summary,
            severity=event.severity,
            source=event.source,
            custom_details=event.custom_details,
            integration="native",
        )
        return ev.TRIGGER, payload, event.service, dedup
    type_, model = ev.ACTIONS[event.event_action]  # the body carries exactly the payload's fields
    payload = model.model_validate(event.model_dump(exclude={"event_action"}))
    return type_, payload, event.service, event.dedup_key


class FrontedFastAPI(FastAPI):
    """FastAPI with an ASGI app in front of its own middleware (error pages, telemetry, body limits):
    the native fast path, which hands it every request it does not answer (py-spy: those layers
    were a twentieth of a single-event request's CPU)."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The FastAPI app proper, for what the front passes on."""
        await super().__call__(scope, receive, send)


def create_app(settings: IntakeSettings | None = None, *, serving: bool = False) -> FastAPI:
    """Build the intake's ASGI app; `serving`: the app of a service process (see `settle_heap`)."""
    settings = settings or IntakeSettings()
    intake = Intake(
        link=KafkaLink(settings),
        access=load_access(settings.escalation_config_dir),
        buckets=TokenBuckets(settings.intake_rate_per_second, settings.intake_rate_burst),
        links=LinkSigner(settings.link_secret.get_secret_value().encode()) if settings.link_secret else None,
    )
    sender = Depends(intake.access.dependency(*SENDERS))
    directory = IncidentDirectory(settings.kafka_bootstrap_servers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not intake.access.enabled:
            log.warning("authentication is off: no tokens in the access section of the config folder")
        try:
            await intake.link.publisher()
        except PublishError as exc:
            log.warning("Kafka not reachable at start; answering 503 until it is", error=str(exc))
        directory.start()
        rotation = asyncio.create_task(intake.access.watch(), name="access-watch")
        if serving:
            settle_heap()
        log.info("intake started", port=settings.intake_port)
        try:
            yield
        finally:
            rotation.cancel()
            await directory.stop()
            await intake.link.close()  # uvicorn has drained in-flight requests before this runs
            log.info("intake stopped")

    async def health() -> dict[str, Any]:
        return {"kafka": "ok" if intake.link.connected else "down"}

    app = FrontedFastAPI(
        title="Escalation intake",
        version="0.2.0",
        description=(
            "Accepts incident events from monitoring systems (native JSON, PagerDuty Events v2, Alertmanager, "
            "Grafana) and operators. 202 means the event is durably in Kafka. Errors are problem+json naming "
            "the field at fault."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(ops_router(health))
    app.include_router(integrations_router(intake))
    app.include_router(operator_router(intake, directory))
    app.include_router(heartbeats_router(intake, load_heartbeats(settings.escalation_config_dir)))
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    def event_command(who: Principal, event: AnyEvent) -> Command | Response:
        """The event's command, or the 422 of a rule; HTTPException 403 for another service's key."""
        intake.service_for(who, event.service)
        try:
            return to_command(event)
        except ValidationError as exc:
            return rule_problem(exc)

    def batch_commands(who: Principal, batch: Batch) -> list[Command] | Response:
        """The batch's commands in order, or the 422 naming the event; HTTPException 403 as above."""
        commands = []
        for index, event in enumerate(batch.events):
            intake.service_for(who, event.service)
            try:
                commands.append(to_command(event))
            except ValidationError as exc:
                return rule_problem(exc, f"events.{index}")
        return commands

    async def accept_event(who: Principal, command: Command) -> Response:
        limited = intake.limited(who, command[2], "native")
        if limited is not None:
            return limited
        result = await intake.accept("native", [command])
        if isinstance(result, Response):
            return result
        return _json(202, _accepted(result[0], command))

    async def accept_batch(who: Principal, batch: Batch, commands: list[Command]) -> Response:
        limited = intake.limited(who, batch.events[0].service, "native", cost=len(commands))
        if limited is not None:
            return limited
        result = await intake.accept("native", commands)
        if isinstance(result, Response):
            return result
        events = [_accepted(env, c) for env, c in zip(result, commands, strict=True)]
        return _json(202, {"status": "accepted", "events": events})

    @app.post("/v1/events", status_code=202, response_model=Accepted, responses=_ERRORS)
    async def post_event(event: NativeEvent, who: Annotated[Principal, sender]) -> Response:
        """Accept one native event; 202 only once Kafka acknowledged the write."""
        command = event_command(who, event)
        return command if isinstance(command, Response) else await accept_event(who, command)

    @app.post("/v1/events/batch", status_code=202, response_model=BatchAccepted, responses=_ERRORS)
    async def post_batch(batch: Batch, who: Annotated[Principal, sender]) -> Response:
        """Accept up to 1,000 native events at once; 202 only once Kafka acknowledged all of them."""
        commands = batch_commands(who, batch)
        return commands if isinstance(commands, Response) else await accept_batch(who, batch, commands)

    # The same two routes for the requests they accept, without FastAPI's per-request work; any
    # other request (bad token, invalid event, ...) returns None here before a side effect, and the
    # routes above answer it.
    async def fast_event(data: Any, authorization: str | None) -> Response | None:
        try:
            who = intake.access.authenticate(authorization, SENDERS)
            command = event_command(who, _NATIVE_EVENT.validate_python(data))
        except (HTTPException, ValidationError):
            return None
        return command if isinstance(command, Response) else await accept_event(who, command)

    async def fast_batch(data: Any, authorization: str | None) -> Response | None:
        try:
            who = intake.access.authenticate(authorization, SENDERS)
            batch = Batch.model_validate(data)
            commands = batch_commands(who, batch)
        except (HTTPException, ValidationError):
            return None
        return commands if isinstance(commands, Response) else await accept_batch(who, batch, commands)

    app.front = NativeFastPath(
        app.behind_front, routes={"/v1/events": fast_event, "/v1/events/batch": fast_batch}, limit=MAX_BODY_BYTES
    )
    return app


def app_from_environment() -> FastAPI:
    """The app of one intake worker process when INTAKE_WORKERS > 1 (uvicorn's factory)."""
    settings = IntakeSettings()
    configure_logging("intake", settings.log_level)
    return create_app(settings, serving=True)
