"""Heartbeat monitors: `POST /v1/heartbeats/{name}` pings a dead man's switch declared in config.

```yaml
heartbeats:
  nightly-backup:
    service: storage            # the incident of a missed ping opens on this service
    interval: 26h               # longest silence allowed between two pings
    severity: critical          # of that incident (default critical)
    summary: "Nightly backup did not report"   # optional
```
The escalator keeps the timer (crash-safe, like escalation timers): see
services/escalator/core/heartbeat.py. The first ping starts the watch.
"""

# No `from __future__ import annotations` (FastAPI reads these signatures).
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.escalator.core.durations import Duration
from services.escalator.core.heartbeat import MONITOR_PREFIX
from services.intake.context import SENDERS, Intake
from services.intake.models import Accepted
from shared import events as ev
from shared.auth import Principal
from shared.http import PROBLEM_JSON, problem
from shared.ids import SERVICE_PATTERN, incident_key
from shared.yamlconfig import ConfigError, section_entries

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
"""A heartbeat's name: it is a URL path segment and part of a Kafka key."""


class HeartbeatMonitor(BaseModel):
    """One monitor as declared in the `heartbeats` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str = Field(min_length=1, max_length=255, pattern=SERVICE_PATTERN)
    interval: Duration
    severity: ev.Severity = ev.Severity.CRITICAL
    summary: str | None = Field(None, min_length=1, max_length=1024)


def load_heartbeats(folder: Path) -> dict[str, HeartbeatMonitor]:
    """The `heartbeats` entries of every YAML file of the config folder (a missing folder: none);
    a bad entry raises ConfigError naming the file and line."""
    monitors: dict[str, HeartbeatMonitor] = {}
    for doc, name, body in section_entries(folder, "heartbeats"):
        where = ("heartbeats", name)
        if not re.match(NAME_PATTERN, name):
            message = "a name is 1 to 200 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
            raise ConfigError(doc.path, doc.line_of(where), f"heartbeats.{name}", message)
        try:
            monitor = HeartbeatMonitor.model_validate(body)
        except ValidationError as exc:
            raise doc.error(exc, where) from exc
        if monitor.interval.total_seconds() <= 0 or monitor.interval.total_seconds() > 30 * 86400:
            line = doc.line_of((*where, "interval"))
            raise ConfigError(doc.path, line, f"heartbeats.{name}.interval", "must be above 0s and at most 30d")
        monitors[name] = monitor
    return monitors


class HeartbeatAccepted(Accepted):
    """The ping is in Kafka; the next one is due within `interval_seconds`."""

    interval_seconds: float


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown token.", "content": {PROBLEM_JSON: {}}},
    403: {
        "description": "The key belongs to another service, or its role may not ping.",
        "content": {PROBLEM_JSON: {}},
    },
    404: {"description": "No heartbeat of this name is configured.", "content": {PROBLEM_JSON: {}}},
    422: {"description": "Not a heartbeat name; names the field.", "content": {PROBLEM_JSON: {}}},
    429: {"description": "Over the rate limit; see Retry-After.", "content": {PROBLEM_JSON: {}}},
    503: {"description": "Kafka unavailable; see Retry-After.", "content": {PROBLEM_JSON: {}}},
}


def heartbeats_router(intake: Intake, monitors: dict[str, HeartbeatMonitor]) -> APIRouter:
    """The /v1/heartbeats/{name} route."""
    router = APIRouter(prefix="/v1/heartbeats", tags=["heartbeats"])
    sender = Depends(intake.access.dependency(*SENDERS))

    @router.post("/{name}", status_code=202, response_model=HeartbeatAccepted, responses=_RESPONSES)
    async def ping(
        name: Annotated[str, PathParam(pattern=NAME_PATTERN, description="The monitor's name in the config.")],
        who: Annotated[Principal, sender],
    ) -> Response:
        """A monitored job is alive. Without another ping within the configured interval, an incident
        opens on the heartbeat's service; the next ping resolves it."""
        monitor = monitors.get(name)
        if monitor is None:
            return problem(404, "Unknown heartbeat", f"no heartbeat {name!r} is configured (section heartbeats)")
        intake.service_for(who, monitor.service)
        limited = intake.limited(who, monitor.service, "heartbeat")
        if limited is not None:
            return limited
        payload = ev.HeartbeatPing(
            name=name,
            service=monitor.service,
            interval_seconds=monitor.interval.total_seconds(),
            severity=monitor.severity,
            summary=monitor.summary,
            actor=who.name if who.role is not None else None,
        )
        dedup = f"{MONITOR_PREFIX}{name}"
        result = await intake.accept("heartbeat", [(ev.HEARTBEAT_PING, payload, monitor.service, dedup)])
        if isinstance(result, Response):
            return result
        accepted = HeartbeatAccepted(
            event_id=result[0].event_id,
            incident_key=incident_key(monitor.service, dedup),
            dedup_key=dedup,
            interval_seconds=payload.interval_seconds,
        )
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)

    return router
