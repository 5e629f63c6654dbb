"""Who is on call when, whom a target reaches, and which contact methods are due; pure, time is an argument."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from pydantic import AwareDatetime, BaseModel, ConfigDict

from services.escalator.core.calendar import BusinessCalendar
from services.notifier.directory.model import (
    ContactMethod,
    Directory,
    Rotation,
    Schedule,
    Urgency,
    User,
    is_email,
)

# An email target that is no directory user's address resolves to this pseudo-user id + the address.
EMAIL_PREFIX = "email:"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Shift(_Frozen):
    """A stretch of time in which the same users are on call (none: a gap)."""

    start: AwareDatetime
    end: AwareDatetime
    users: tuple[str, ...]


class Resolution(_Frozen):
    """The users a target reaches at one instant, or why it reaches nobody."""

    users: tuple[str, ...]
    reason: str | None = None


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone; on-call questions need an instant")


# --- one layer ------------------------------------------------------------------------------------


def _handoff(schedule: Schedule, layer: Rotation, k: int) -> datetime:
    """The instant of the layer's k-th hand-off (0: `start`): wall-clock arithmetic in the zone."""
    return schedule.instant(schedule.local(layer.start) + k * layer.period)


def _turn(schedule: Schedule, layer: Rotation, at: datetime) -> int:
    """The number of the latest hand-off at or before `at` (negative before `start`)."""
    k = (schedule.local(at) - schedule.local(layer.start)) // layer.period
    # The wall-clock estimate is off by one at most around a DST change; step to the exact turn.
    while _handoff(schedule, layer, k + 1) <= at:
        k += 1
    while _handoff(schedule, layer, k) > at:
        k -= 1
    return k


@lru_cache(maxsize=256)
def _calendar(zone: str, hours: tuple[tuple[str, tuple[str, ...]], ...]) -> BusinessCalendar:
    return BusinessCalendar(id="restrict", timezone=zone, hours=dict(hours))


def _restriction(schedule: Schedule, layer: Rotation) -> BusinessCalendar | None:
    if layer.restrict is None:
        return None
    return _calendar(schedule.time_zone, tuple(sorted(layer.restrict.items())))


def _layer_on_call(schedule: Schedule, layer: Rotation, at: datetime) -> str | None:
    if not layer.participants or at < _handoff(schedule, layer, 0):
        return None
    if layer.end is not None and at >= schedule.instant(layer.end):
        return None
    restriction = _restriction(schedule, layer)
    if restriction is not None and not restriction.is_open(at):
        return None
    return layer.participants[_turn(schedule, layer, at) % len(layer.participants)]


def _layer_changes(schedule: Schedule, layer: Rotation, start: datetime, end: datetime) -> set[datetime]:
    """Every instant in the window at which the layer may change hands (a superset is fine)."""
    first = _handoff(schedule, layer, 0)
    points = {first} | ({schedule.instant(layer.end)} if layer.end is not None else set())
    if not layer.participants:
        return points
    k = _turn(schedule, layer, max(start, first))
    while (handoff := _handoff(schedule, layer, k + 1)) < end:
        points.add(handoff)
        k += 1
    restriction = _restriction(schedule, layer)
    if restriction is not None:
        day: date = schedule.local(start).date() - timedelta(days=1)
        while day <= schedule.local(end).date():
            points.update(edge for span in restriction.intervals(day) for edge in span)
            day += timedelta(days=1)
    return points


# --- a schedule -----------------------------------------------------------------------------------


def on_call(schedule: Schedule, at: datetime) -> list[str]:
    """The user ids on call at instant `at`: the last covering override, else the last layer with somebody."""
    _require_aware(at)
    for override in reversed(schedule.overrides):
        if override.start <= at < override.end:
            return [override.user]
    for layer in reversed(schedule.layers):
        user = _layer_on_call(schedule, layer, at)
        if user is not None:
            return [user]
    return []


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The shifts tiling [start, end), in the schedule's zone; neighbours always differ in their users."""
    _require_aware(start)
    _require_aware(end)
    if end <= start:
        return []
    points: set[datetime] = set()
    for override in schedule.overrides:
        points |= {override.start, override.end}
    for layer in schedule.layers:
        points |= _layer_changes(schedule, layer, start, end)
    inner = sorted({p.astimezone(UTC) for p in points if start < p < end})
    cuts = [start.astimezone(UTC), *inner, end.astimezone(UTC)]
    spans: list[tuple[datetime, datetime, tuple[str, ...]]] = []
    for a, b in itertools.pairwise(cuts):
        users = tuple(on_call(schedule, a))
        if spans and spans[-1][2] == users:
            spans[-1] = (spans[-1][0], b, users)
        else:
            spans.append((a, b, users))
    zone = schedule.zone
    return [Shift(start=a.astimezone(zone), end=b.astimezone(zone), users=u) for a, b, u in spans]


# --- targets --------------------------------------------------------------------------------------


def _nobody(reason: str) -> Resolution:
    return Resolution(users=(), reason=reason)


def _user(directory: Directory, user_id: str, at: datetime) -> Resolution:
    return Resolution(users=(user_id,)) if user_id in directory.users else _nobody(f"unknown user {user_id!r}")


def _schedule(directory: Directory, schedule_id: str, at: datetime) -> Resolution:
    schedule = directory.schedules.get(schedule_id)
    if schedule is None:
        return _nobody(f"unknown schedule {schedule_id!r}")
    users = on_call(schedule, at)
    if not users:
        return _nobody(f"schedule {schedule_id!r} has nobody on call at {at.astimezone(schedule.zone).isoformat()}")
    return Resolution(users=tuple(users))


def _team(directory: Directory, team_id: str, at: datetime) -> Resolution:
    team = directory.teams.get(team_id)
    if team is None:
        return _nobody(f"unknown team {team_id!r}")
    if team.schedule is not None:
        via = _schedule(directory, team.schedule, at)
        return via if via.users else _nobody(f"team {team_id!r}: {via.reason}")
    if not team.members:
        return _nobody(f"team {team_id!r} has no members")
    return Resolution(users=team.members)


def _email(directory: Directory, address: str, at: datetime) -> Resolution:
    if not is_email(address):
        return _nobody(f"{address!r} is not an email address")
    wanted = address.lower()
    for user in directory.users.values():
        if any(m.type == "email" and m.address.lower() == wanted for m in user.contact_methods):
            return Resolution(users=(user.id,))
    return Resolution(users=(EMAIL_PREFIX + address,))


_RESOLVERS: dict[str, Callable[[Directory, str, datetime], Resolution]] = {
    "user": _user,
    "team": _team,
    "schedule": _schedule,
    "email": _email,
}


def resolve_target(directory: Directory, target_type: str, target_id: str, at: datetime) -> Resolution:
    """The users a user, team, schedule or email target reaches at `at`; nobody comes with the reason.

    A team pages through its schedule when it has one, else all its members. An email address
    resolves to the directory user who has it as an email contact method (so their notification
    rules apply), else to the pseudo-user `email:<address>` (see `user_for`).
    """
    _require_aware(at)
    resolver = _RESOLVERS.get(target_type)
    if resolver is None:
        raise ValueError(f"{target_type!r} targets are not directory entries; use {', '.join(_RESOLVERS)}")
    return resolver(directory, target_id, at)


def user_for(directory: Directory, user_id: str) -> User | None:
    """The user behind a resolved id: a directory user, or the pseudo-user of an email address."""
    user = directory.users.get(user_id)
    if user is None and user_id.startswith(EMAIL_PREFIX):
        address = user_id.removeprefix(EMAIL_PREFIX)
        user = User(id=user_id, name=address, contact_methods=(ContactMethod(type="email", address=address),))
    return user


# --- notification rules ---------------------------------------------------------------------------


def contacts_for(user: User, urgency: Urgency, elapsed: timedelta) -> list[ContactMethod]:
    """The contact methods due `elapsed` after a step reached the user, earliest rule first."""
    due = sorted((r for r in user.rules() if r.urgency == urgency and r.delay <= elapsed), key=lambda r: r.delay)
    out: list[ContactMethod] = []
    for rule in due:
        out += [m for m in user.methods_for(rule.contact) if m not in out]
    return out


def next_contact_delay(user: User, urgency: Urgency, elapsed: timedelta) -> timedelta | None:
    """When (since the step) the next notification rule after `elapsed` falls due; None: no more."""
    return min((r.delay for r in user.rules() if r.urgency == urgency and r.delay > elapsed), default=None)
