"""Operator actions on an incident named by its id: acknowledge, resolve, escalate, snooze, reassign, notes.

Who did it is recorded as the actor: the token holder's name when tokens are configured, otherwise
the `actor` of the body.
"""

# No `from __future__ import annotations` (FastAPI reads these signatures).
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from services.intake.context import Intake
from services.intake.directory import IncidentDirectory, NotReady
from services.intake.models import Accepted
from shared import events as ev
from shared.auth import Principal, Role
from shared.http import PROBLEM_JSON, problem, rule_problem


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


def operator_router(intake: Intake, directory: IncidentDirectory) -> APIRouter:
    """The /v1/incidents/{incident_id}/... routes."""
    router = APIRouter(prefix="/v1/incidents/{incident_id}", tags=["operators"])
    responder = Depends(intake.access.dependency(Role.RESPONDER))

    async def act(incident_id: uuid.UUID, who: Principal, action: str, body: ActorBody) -> Response:
        try:
            key = directory.key_of(incident_id)
        except NotReady:
            return problem(503, "Incident history loading", "retry shortly", headers={"Retry-After": "2"})
        if key is None:
            return problem(404, "Unknown incident", f"no incident {incident_id} was opened")
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

    @router.post("/acknowledge", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def acknowledge(
        incident_id: uuid.UUID, who: Annotated[Principal, responder], body: ActorBody | None = None
    ) -> Response:
        """Stop escalating: somebody is on it."""
        return await act(incident_id, who, "acknowledge", body or ActorBody())

    @router.post("/resolve", status_code=202, response_model=Accepted, responses=_RESPONSES)
    async def resolve(
        incident_id: uuid.UUID, who: Annotated[Principal, responder], body: ActorBody | None = None
    ) -> Response:
        """Close the incident and stop every clock."""
        return await act(incident_id, who, "resolve", body or ActorBody())

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
