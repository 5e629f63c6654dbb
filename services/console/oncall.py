"""Who is on call now for each schedule, and the next hand-offs, from the notifier's directory."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.notifier.directory.model import Directory
from services.notifier.directory.oncall import shifts

# How far ahead hand-offs are listed.
HORIZON = timedelta(days=14)


def _people(directory: Directory, users: tuple[str, ...]) -> list[dict[str, str]]:
    out = []
    for user_id in users:
        user = directory.users.get(user_id)
        out.append({"id": user_id, "name": user.name if user is not None and user.name else user_id})
    return out


def on_call_now(directory: Directory, now: datetime, handoffs: int = 4) -> list[dict[str, Any]]:
    """Per schedule: who is on call at `now`, until when, and the following `handoffs` shifts."""
    out = []
    for schedule in sorted(directory.schedules.values(), key=lambda s: s.id):
        spans = shifts(schedule, now, now + HORIZON)
        current, following = spans[0], spans[1 : 1 + handoffs]
        teams = sorted(t.id for t in directory.teams.values() if t.schedule == schedule.id)
        out.append(
            {
                "id": schedule.id,
                "name": schedule.name or schedule.id,
                "time_zone": schedule.time_zone,
                "teams": teams,
                "on_call": _people(directory, current.users),
                "until": current.end.isoformat() if current.end < now + HORIZON else None,
                "next": [
                    {"start": s.start.isoformat(), "end": s.end.isoformat(), "on_call": _people(directory, s.users)}
                    for s in following
                ],
            }
        )
    return out
