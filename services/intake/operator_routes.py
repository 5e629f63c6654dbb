"""Operator actions on an incident named by its id: acknowledge, resolve, escalate, snooze, reassign, notes.

Who did it is recorded as the actor: the token holder's name when tokens are configured, otherwise
the `actor` of the body. Acknowledge and resolve also take the signed links of notifications
(`signed_links.py`): a GET shows a confirmation page, the POST acts as the person the link was sent to.
"""

# No `from __future__ import annotations` (FastAPI reads these signatures).
import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from services.intake.context import Intake
from services.intake.directory import IncidentDirectory, NotReady
from services.intake.models import Accepted
from services.intake.signed_links import (
    LinkRefused,
    SignedQuery,
    confirmation_page,
    done_page,
    error_page,
    link_principal,
    wants_html,
)
from shared import events as ev
from shared.auth import Principal, Role
from shared.http import PROBLEM_JSON, problem, rule_problem

RESPONDERS = frozenset({Role.RESPONDER})
# Longest an unknown incident id waits for the directory to read up to the topic's end.
SYNC_TIMEOUT = 5.0


class ActorBody(BaseModel):
    """Who acts (used when no tokens are configured; otherwise the token's name is recorded)."""

    actor: str | None = Field(None, max_length=255, examples=["alice"])


class EscalateBody(ActorBody):
    """Escalate now: to the next level, or to `to_level`."""

    to_level: int | None = Field(None, ge=1)


class SnoozeBody(ActorBody):
    """Hold escalation for a while."""

    duration_seconds: float = Field(gt=0, le=7 * 86400)


class ReassignBody(ActorBody):
    """Hand the incident to another policy or team."""

    policy: str | None = Field(None, min_length=1)
    team: str | None = Field(None, min_length=1)


class NoteBody(ActorBody):
    """Add a note to the incident's history."""

    text: str = Field(min_length=1, max_length=10_000)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown token.", "content": {PROBLEM_JSON: {}}},
    403: {"description": "The token may not act on incidents.", "content": {PROBLEM_JSON: {}}},
    404: {"description": "No incident with this id was ever opened.", "content": {PROBLEM_JSON: {}}},
    422: {"description": "Invalid body; names the field.", "content": {PROBLEM_JSON: {}}},
    503: {"description": "Kafka unavailable or incident history still loading.", "content": {PROBLEM_JSON: {}}},
}
_LINK_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The confirmation page (HTML); it changes nothing.", "content": {"text/html": {}}},
    403: {"description": "The link was altered or expired.", "content": {PROBLEM_JSON: {}, "text/html": {}}},
    404: {"description": "No incident with this id was ever opened.", "content": {PROBLEM_JSON: {}, "text/html": {}}},
    422: {"description": "A query parameter is missing or invalid; names it.", "content": {PROBLEM_JSON: {}}},
    503: {"description": "Incident history still loading.", "content": {PROBLEM_JSON: {}, "text/html": {}}},
}
_EXPIRES = Query(description="Signed link: Unix time the link expires at.")
_BY = Query(max_length=255, description="Signed link: the person it was sent to, recorded as the actor.")
_SIG = Query(max_length=128, description="Signed link: hex HMAC-SHA256 over action, incident, expires, by.")


def operator_router(intake: Intake, directory: IncidentDirectory) -> APIRouter:
    """The /v1/incidents/{incident_id}/... routes."""
    router = APIRouter(prefix="/v1/incidents/{incident_id}", tags=["operators"])
    responder = Depends(intake.access.dependency(Role.RESPONDER))

    async def act(incident_id: uuid.UUID, who: Principal, action: str, body: ActorBody) -> Response:
        key = await key_or_problem(incident_id)
        if isinstance(key, Response):
            return key
        service, _, dedup = key.partition("/")
        actor = who.name if who.role is not None else body.actor
        type_, model = ev.ACTIONS[action]
        fields = {**body.model_dump(exclude_none=True), "service": service, "dedup_key": dedup, "actor": actor}
        try:
            payload = model.model_validate(fields)
        except ValidationError as exc:
            return rule_problem(exc)
        limited = intake.limited(who, service, "operator")
        if limited is not None:
            return limited
        result = await intake.accept("operator", [(type_, payload, service, dedup)])
        if isinstance(result, Response):
            return result
        accepted = Accepted(event_id=result[0].event_id, incident_key=key, dedup_key=dedup)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    async def key_or_problem(incident_id: uuid.UUID) -> str | Response:
        try:
            key = directory.key_of(incident_id)
            if key is None:
                # The directory reads in batches: an incident opened a moment ago (its page just
                # sent) may not be learnt yet. Read up to the topic's end before saying 404.
                await asyncio.wait_for(directory.sync(), SYNC_TIMEOUT)
                key = directory.key_of(incident_id)
        except (NotReady, TimeoutError):
            return problem(503, "Incident history loading", "retry shortly", headers={"Retry-After": "2"})
        if key is None:
            return problem(404, "Unknown incident", f"no incident {incident_id} was opened")
        return key

    async def by_link_or_token(
        action: str,
        incident_id: uuid.UUID,
        request: Request,
        authorization: str | None,
        link: SignedQuery,
        body: ActorBody,
    ) -> Response:
        """Acknowledge or resolve for a responder's token, or for a signed link's recipient (HTML for browsers)."""
        page = link.sig is not None and wants_html(request)
        try:
            if link.sig is not None:
                who = link_principal(intake.links, action, incident_id, link, datetime.now(UTC))
            else:
                who = intake.access.authenticate(authorization, RESPONDERS)
        except LinkRefused as exc:
            return exc.page() if page else exc.response()
        response = await act(incident_id, who, action, body)
        if not page:
            return response
        if response.status_code != 202:
            return error_page(response)
        return done_page(action, json.loads(bytes(response.body))["incident_key"])

    async def confirm(action: str, incident_id: uuid.UUID, request: Request, link: SignedQuery) -> Response:
        """The page a signed link opens: checks the link, changes nothing."""
        try:
            who = link_principal(intake.links, action, incident_id, link, datetime.now(UTC))
        except LinkRefused as exc:
            return exc.page() if wants_html(request) else exc.response()
        key = await key_or_problem(incident_id)
        if isinstance(key, Response):
            return error_page(key) if wants_html(request) else key
        return confirmation_page(action, incident_id, who, key)

    @router.post("/acknowledge", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def acknowledge(
        incident_id: uuid.UUID,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        expires: Annotated[int | None, _EXPIRES] = None,
        by: Annotated[str | None, _BY] = None,
        sig: Annotated[str | None, _SIG] = None,
        body: ActorBody | None = None,
    ) -> Response:
        """Stop escalating: somebody is on it. A responder's bearer token, or the query of a signed link."""
        link = SignedQuery(expires, by, sig)
        return await by_link_or_token("acknowledge", incident_id, request, authorization, link, body or ActorBody())

    @router.post("/resolve", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def resolve(
        incident_id: uuid.UUID,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        expires: Annotated[int | None, _EXPIRES] = None,
        by: Annotated[str | None, _BY] = None,
        sig: Annotated[str | None, _SIG] = None,
        body: ActorBody | None = None,
    ) -> Response:
        """Close the incident and stop every clock. A responder's bearer token, or the query of a signed link."""
        link = SignedQuery(expires, by, sig)
        return await by_link_or_token("resolve", incident_id, request, authorization, link, body or ActorBody())

    @router.get("/acknowledge", response_class=HTMLResponse, responses=_LINK_PAGE)
    async def confirm_acknowledge(
        incident_id: uuid.UUID,
        request: Request,
        expires: Annotated[int, Query(description="Unix time the link expires at.")],
        by: Annotated[str, Query(max_length=255, description="The person the link was sent to.")],
        sig: Annotated[str, Query(max_length=128, description="Hex HMAC-SHA256 of the link.")],
    ) -> Response:
        """Open a signed acknowledge link: a confirmation page whose button acknowledges (a GET changes nothing)."""
        return await confirm("acknowledge", incident_id, request, SignedQuery(expires, by, sig))

    @router.get("/resolve", response_class=HTMLResponse, responses=_LINK_PAGE)
    async def confirm_resolve(
        incident_id: uuid.UUID,
        request: Request,
        expires: Annotated[int, Query(description="Unix time the link expires at.")],
        by: Annotated[str, Query(max_length=255, description="The person the link was sent to.")],
        sig: Annotated[str, Query(max_length=128, description="Hex HMAC-SHA256 of the link.")],
    ) -> Response:
        """Open a signed resolve link: a confirmation page whose button resolves (a GET changes nothing)."""
        return await confirm("resolve", incident_id, request, SignedQuery(expires, by, sig))

    @router.post("/escalate", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def escalate(
        incident_id: uuid.UUID, who: Annotated[Principal, responder], body: EscalateBody | None = None
    ) -> Response:
        """Escalate now, to the next level or to `to_level`."""
        return await act(incident_id, who, "escalate", body or EscalateBody())

    @router.post("/snooze", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def snooze(incident_id: uuid.UUID, who: Annotated[Principal, responder], body: SnoozeBody) -> Response:
        """Hold escalation for `duration_seconds`."""
        return await act(incident_id, who, "snooze", body)

    @router.post("/reassign", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def reassign(incident_id: uuid.UUID, who: Annotated[Principal, responder], body: ReassignBody) -> Response:
        """Hand the incident to another escalation policy or team (exactly one of the two)."""
        return await act(incident_id, who, "reassign", body)

    @router.post("/notes", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def notes(incident_id: uuid.UUID, who: Annotated[Principal, responder], body: NoteBody) -> Response:
        """Add a note to the incident's history."""
        return await act(incident_id, who, "note", body)

    return router
