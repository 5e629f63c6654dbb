"""Routes for what monitoring systems already send: PagerDuty Events v2, Alertmanager and Grafana webhooks.

Their bodies are parsed here, not by FastAPI, so an invalid one gets PagerDuty's 400 (as
problem+json naming the fields, with PagerDuty's `message` and `errors` members too).
"""

# No `from __future__ import annotations` (FastAPI reads these signatures).
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from services.intake.context import Intake
from services.intake.formats.alertmanager import AlertmanagerWebhook
from services.intake.formats.alertmanager import to_commands as alertmanager_commands
from services.intake.formats.common import FormatError, ParsedCommand
from services.intake.formats.pagerduty import MAX_BODY_BYTES, PagerDutyEvent
from services.intake.formats.pagerduty import to_command as pagerduty_command
from shared.auth import Principal, Role
from shared.http import PROBLEM_JSON
from shared.ids import uuid7

_MAX_SERVICE = 255  # ev.Trigger.service

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body; `errors` names each field.", "content": {PROBLEM_JSON: {}}},
    401: {"description": "Unknown integration key.", "content": {PROBLEM_JSON: {}}},
    403: {"description": "The key is not an integration key.", "content": {PROBLEM_JSON: {}}},
    413: {"description": "Body over 512 KB.", "content": {PROBLEM_JSON: {}}},
    429: {"description": "Over the rate limit; retry after the given seconds.", "content": {PROBLEM_JSON: {}}},
    503: {"description": "Kafka did not acknowledge; retry after the given seconds.", "content": {PROBLEM_JSON: {}}},
}


class EnqueueAccepted(BaseModel):
    """PagerDuty's answer to an accepted event."""

    status: str = "success"
    message: str = "Event processed"
    dedup_key: str


class WebhookAccepted(BaseModel):
    """Every alert of the webhook became a command durably in Kafka."""

    status: str = "accepted"
    events: list[dict[str, str]]


def _invalid(errors: list[dict[str, str]]) -> Response:
    """400 problem+json naming each field at fault, with PagerDuty's `message` member too."""
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    body = {
        "type": "about:blank",
        "title": "Invalid event",
        "status": 400,
        "detail": detail,
        "message": "Event object is invalid",
        "errors": errors,
    }
    return JSONResponse(body, status_code=400, media_type=PROBLEM_JSON)


def _validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads takes NaN and Infinity; they would be written back as null


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(413, "Request body too large")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:  # undecodable bytes, invalid JSON, NaN, an integer of over 4,300 digits
        raise _Invalid([{"field": "body", "message": f"not JSON: {exc}"}]) from exc
    except RecursionError:
        raise _Invalid([{"field": "body", "message": "not JSON: nested too deeply"}]) from None


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors


def _integration(intake: Intake, key: str | None, fallback_service: str | None) -> tuple[Principal, str]:
    """Who sends and for which service: an integration key names its service; without any
    configured key (development) the key itself, or `?service=`, is the service id."""
    if not intake.access.enabled:
        service = fallback_service or key
        if not service:
            raise _Invalid([{"field": "service", "message": "name the service (authentication is off)"}])
        field = "service" if fallback_service else "key"
        if len(service) > _MAX_SERVICE:
            raise _Invalid([{"field": field, "message": f"a service id has at most {_MAX_SERVICE} characters"}])
        if "/" in service:
            raise _Invalid([{"field": field, "message": "a service id has no '/' (it begins the incident key)"}])
        return Principal("anonymous", None), service
    if not key:
        raise HTTPException(401, "An integration key is required", {"WWW-Authenticate": "Bearer"})
    principal = intake.access.lookup(key)
    intake.access.check(principal, frozenset({Role.INTEGRATION}))
    if principal.service is None:
        raise HTTPException(403, f"Token {principal.name!r} is not an integration key of a service")
    return principal, principal.service


def _commands(parsed: list[ParsedCommand], service: str) -> list[tuple[str, BaseModel, str, str]]:
    return [(p.type, p.payload, service, p.dedup_key) for p in parsed]


def integrations_router(intake: Intake) -> APIRouter:
    """The PagerDuty, Alertmanager and Grafana routes of one intake app."""
    router = APIRouter()

    @router.post(
        "/v2/enqueue",
        status_code=202,
        response_model=EnqueueAccepted,
        responses=_RESPONSES,
        openapi_extra={
            "requestBody": {"content": {"application/json": {"schema": PagerDutyEvent.model_json_schema()}}}
        },
    )
    async def enqueue(request: Request) -> Response:
        """PagerDuty Events API v2: trigger, acknowledge or resolve by `routing_key` and `dedup_key`."""
        try:
            data = await _json_body(request)
            try:
                event = PagerDutyEvent.model_validate(data)
            except ValidationError as exc:
                return _invalid(_validation_errors(exc))
            principal, service = _integration(intake, event.routing_key, None)
            parsed = pagerduty_command(event, service, lambda: str(uuid7()))
        except _Invalid as exc:
            return _invalid(exc.errors)
        except FormatError as exc:
            return _invalid([{"field": exc.field, "message": exc.message}])
        limited = intake.limited(principal, service, "pagerduty")
        if limited is not None:
            return limited
        result = await intake.accept("pagerduty", _commands([parsed], service))
        if isinstance(result, Response):
            return result
        return JSONResponse(EnqueueAccepted(dedup_key=parsed.dedup_key).model_dump(), status_code=202)

    async def webhook(request: Request, integration: str) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else request.query_params.get("key")
        try:
            data = await _json_body(request)
            try:
                body = AlertmanagerWebhook.model_validate(data)
            except ValidationError as exc:
                return _invalid(_validation_errors(exc))
            principal, service = _integration(intake, key, request.query_params.get("service"))
            parsed = alertmanager_commands(body, service)
        except _Invalid as exc:
            return _invalid(exc.errors)
        except FormatError as exc:
            return _invalid([{"field": exc.field, "message": exc.message}])
        if not parsed:
            return JSONResponse(WebhookAccepted(events=[]).model_dump(), status_code=202)
        limited = intake.limited(principal, service, integration, cost=len(parsed))
        if limited is not None:
            return limited
        result = await intake.accept(integration, _commands(parsed, service))
        if isinstance(result, Response):
            return result
        events = [
            {"event_id": str(env.event_id), "incident_key": env.incident_key, "dedup_key": p.dedup_key, "type": p.type}
            for env, p in zip(result, parsed, strict=True)
        ]
        return JSONResponse(WebhookAccepted(events=events).model_dump(), status_code=202)

    schema = {"requestBody": {"content": {"application/json": {"schema": AlertmanagerWebhook.model_json_schema()}}}}

    @router.post(
        "/v1/integrations/alertmanager",
        status_code=202,
        response_model=WebhookAccepted,
        responses=_RESPONSES,
        openapi_extra=schema,
    )
    async def alertmanager(request: Request) -> Response:
        """Alertmanager webhook (version 4): each alert triggers or resolves by its fingerprint.
        The integration key comes as `Authorization: Bearer <key>` or `?key=`."""
        return await webhook(request, "alertmanager")

    @router.post(
        "/v1/integrations/grafana",
        status_code=202,
        response_model=WebhookAccepted,
        responses=_RESPONSES,
        openapi_extra=schema,
    )
    async def grafana(request: Request) -> Response:
        """Grafana alerting's webhook (Alertmanager's shape plus Grafana's fields)."""
        return await webhook(request, "grafana")

    return router
