"""Users and their contact methods, teams and on-call schedules, as validated from YAML.

A schedule is a stack of layers (rotations) in one time zone. A rotation is written in one form:
`start` is its first hand-off, a local wall-clock time in the schedule's zone (an aware instant is
read in that zone), and every later hand-off happens at `start`'s wall-clock time plus whole
periods: one day (`daily`), seven days (`weekly`), or `shift` (`custom`). So a Monday 09:00 weekly
hand-off stays Monday 09:00 local across DST changes. A wall-clock time skipped that day by a
spring-forward change is read with the offset before the change (02:30 becomes 03:30); one that
happens twice at a fall-back change is its first occurrence. (So a custom shift shorter than 2h
that lies wholly in a skipped hour is skipped, like the hour.)
Before `start` (and from `end`) a layer has nobody on call. A later layer wins wherever it has
somebody; its gaps fall through to earlier layers. Overrides replace whoever the layers put on call,
inside their window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.escalator.core.calendar import BusinessCalendar
from services.escalator.core.durations import Duration
from shared.events import Severity

Loc = tuple[str | int, ...]

# Shorter custom shifts could hand off twice inside one DST gap and make hand-offs run backwards.
MIN_SHIFT = timedelta(hours=1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from exc
    return value


class Urgency(StrEnum):
    """How urgently a user wants to hear about an incident; picks their notification rules."""

    HIGH = "high"
    LOW = "low"


_URGENCY = {
    Severity.CRITICAL: Urgency.HIGH,
    Severity.ERROR: Urgency.HIGH,
    Severity.WARNING: Urgency.LOW,
    Severity.INFO: Urgency.LOW,
}


def urgency_of(severity: Severity) -> Urgency:
    """High for critical and error incidents, low for warning and info."""
    return _URGENCY[severity]


ContactType = Literal["email", "sms", "webhook", "slack", "teams", "pagerduty", "opsgenie"]
CONTACT_TYPES: tuple[str, ...] = ("email", "sms", "webhook", "slack", "teams", "pagerduty", "opsgenie")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,}$")
_URL = re.compile(r"^https?://\S+$")
# pagerduty and opsgenie addresses are integration keys: any non-empty text.
_ADDRESSES: dict[str, tuple[re.Pattern[str], str]] = {
    "email": (_EMAIL, "is not an email address"),
    "sms": (_PHONE, "is not a phone number; write e.g. '+49 170 1234567'"),
    "webhook": (_URL, "is not an http(s) URL"),
    "slack": (_URL, "is not an http(s) URL"),
    "teams": (_URL, "is not an http(s) URL"),
}


def is_email(address: str) -> bool:
    """True when `address` looks like an email address."""
    return _EMAIL.match(address) is not None


class ContactMethod(_Frozen):
    """One way to reach a user: an email address, a phone number, a URL or an integration key."""

    type: ContactType
    address: str = Field(min_length=1, examples=["alice@example.com", "+49 170 1234567", "https://hooks.example/x"])
    name: str | None = Field(None, min_length=1, description="How notification rules refer to it; default: its type.")

    @model_validator(mode="after")
    def _address_fits(self) -> ContactMethod:
        check = _ADDRESSES.get(self.type)
        if check is not None and check[0].match(self.address) is None:
            raise ValueError(f"{self.type} address {self.address!r} {check[1]}")
        if self.name in CONTACT_TYPES and self.name != self.type:
            raise ValueError(f"name {self.name!r} is a contact type; a rule naming it would be ambiguous")
        return self


class NotificationRule(_Frozen):
    """Contact a user through one contact method `delay` after a step reached them, for one urgency."""

    urgency: Urgency
    contact: str = Field(
        min_length=1, description="The name of one of the user's contact methods, or a type (all methods of it)."
    )
    delay: Duration = timedelta(0)


def _methods_for(methods: tuple[ContactMethod, ...], contact: str) -> tuple[ContactMethod, ...]:
    named = tuple(m for m in methods if m.name == contact)
    return named or tuple(m for m in methods if m.type == contact and m.name is None)


class User(_Frozen):
    """A person who can be paged."""

    id: str = Field(min_length=1)
    name: str | None = None
    time_zone: str = Field("UTC", examples=["Europe/Berlin"])
    contact_methods: tuple[ContactMethod, ...] = ()
    notification_rules: tuple[NotificationRule, ...] | None = Field(
        None, description="Absent: every contact method at once, for both urgencies."
    )

    _zone = field_validator("time_zone")(_known_zone)

    @field_validator("contact_methods")
    @classmethod
    def _unique_names(cls, value: tuple[ContactMethod, ...]) -> tuple[ContactMethod, ...]:
        names = [m.name for m in value if m.name is not None]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ValueError(f"two contact methods are named {duplicate!r}")
        return value

    @field_validator("notification_rules")
    @classmethod
    def _rules_name_methods(
        cls, value: tuple[NotificationRule, ...] | None, info: ValidationInfo
    ) -> tuple[NotificationRule, ...] | None:
        methods: tuple[ContactMethod, ...] = info.data.get("contact_methods", ())
        for i, rule in enumerate(value or ()):
            if not _methods_for(methods, rule.contact):
                raise ValueError(f"rule {i}: {rule.contact!r} is neither a contact method's name nor type")
        return value

    @property
    def label(self) -> str:
        """The name, or the id."""
        return self.name or self.id

    def methods_for(self, contact: str) -> tuple[ContactMethod, ...]:
        """The method named `contact`, else every unnamed method of type `contact`."""
        return _methods_for(self.contact_methods, contact)

    def rules(self) -> tuple[NotificationRule, ...]:
        """The notification rules in force (the default when none are written)."""
        if self.notification_rules is not None:
            return self.notification_rules
        return tuple(
            NotificationRule(urgency=u, contact=m.name or m.type) for u in Urgency for m in self.contact_methods
        )


class Team(_Frozen):
    """A group of users, paged all at once or through its on-call schedule."""

    id: str = Field(min_length=1)
    name: str | None = None
    members: tuple[str, ...] = Field((), description="User ids.")
    schedule: str | None = Field(None, description="The schedule the team is paged through; absent: all members.")


class Rotation(_Frozen):
    """One layer of a schedule: participants take turns, handing off at a fixed local wall-clock time."""

    name: str | None = None
    type: Literal["daily", "weekly", "custom"]
    start: datetime = Field(
        description="The first hand-off: local wall-clock time in the schedule's zone, or an aware instant. "
        "Its time of day (and weekday, for weekly) is when every hand-off happens.",
        examples=["2026-03-02T09:00:00"],
    )
    end: datetime | None = Field(None, description="From this instant on the layer has nobody on call.")
    shift: Duration | None = Field(None, description="Shift length of a custom rotation (at least 1h).")
    participants: tuple[str, ...] = Field((), description="User ids, in turn order.")
    restrict: dict[str, tuple[str, ...]] | None = Field(
        None,
        description="On call only inside these local hours, per weekday (mon..sun), as calendars write them; "
        "outside, the layers below show through.",
        examples=[{"mon": ["09:00-17:00"], "fri": ["09:00-17:00"]}],
    )

    @field_validator("restrict")
    @classmethod
    def _valid_restrict(cls, value: dict[str, tuple[str, ...]] | None) -> dict[str, tuple[str, ...]] | None:
        if value is not None:
            try:
                BusinessCalendar(id="restrict", timezone="UTC", hours=value)
            except ValidationError as exc:
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return value

    @model_validator(mode="after")
    def _period_fits_type(self) -> Rotation:
        if self.type == "custom":
            if self.shift is None:
                raise ValueError("a custom rotation needs a shift, e.g. 'shift: 12h'")
            if self.shift < MIN_SHIFT:
                raise ValueError("a custom shift lasts at least 1h")
        elif self.shift is not None:
            raise ValueError(f"a {self.type} rotation has no shift; use type: custom")
        return self

    @property
    def period(self) -> timedelta:
        """Wall-clock time from one hand-off to the next."""
        if self.type == "daily":
            return timedelta(days=1)
        if self.type == "weekly":
            return timedelta(days=7)
        assert self.shift is not None  # checked by _period_fits_type
        return self.shift


class Override(_Frozen):
    """`user` is on call from `start` to `end`, instead of whoever the layers put there."""

    user: str = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("an override ends after it starts")
        return self


class Schedule(_Frozen):
    """Who is on call when: layers of rotations in one time zone, and overrides on top."""

    id: str = Field(min_length=1)
    name: str | None = None
    time_zone: str = Field(examples=["Europe/Berlin"])
    layers: tuple[Rotation, ...] = Field((), description="A later layer wins wherever it has somebody on call.")
    overrides: tuple[Override, ...] = Field((), description="The last override covering an instant wins.")

    _zone_known = field_validator("time_zone")(_known_zone)

    @model_validator(mode="after")
    def _layers_end_after_start(self) -> Schedule:
        for i, layer in enumerate(self.layers):
            if layer.end is not None and self.instant(layer.end) <= self.instant(layer.start):
                raise ValueError(f"layer {i}: end must follow start")
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.time_zone)

    def local(self, value: datetime) -> datetime:
        """`value` as a naive wall-clock time in the schedule's zone."""
        return value.astimezone(self.zone).replace(tzinfo=None) if value.tzinfo is not None else value

    def instant(self, value: datetime) -> datetime:
        """`value` as a UTC instant; a naive value is wall-clock time in the schedule's zone (fold 0)."""
        return (value if value.tzinfo is not None else value.replace(tzinfo=self.zone)).astimezone(UTC)


def dangling_references(
    users: Mapping[str, User], teams: Mapping[str, Team], schedules: Mapping[str, Schedule]
) -> list[tuple[Loc, str]]:
    """Every reference to a user or schedule that does not exist, with where it is written."""
    out: list[tuple[Loc, str]] = []
    for tid, team in teams.items():
        out += [
            (("teams", tid, "members", i), f"unknown user {m!r}") for i, m in enumerate(team.members) if m not in users
        ]
        if team.schedule is not None and team.schedule not in schedules:
            out.append((("teams", tid, "schedule"), f"unknown schedule {team.schedule!r}"))
    for sid, schedule in schedules.items():
        for li, layer in enumerate(schedule.layers):
            out += [
                (("schedules", sid, "layers", li, "participants", i), f"unknown user {p!r}")
                for i, p in enumerate(layer.participants)
                if p not in users
            ]
        out += [
            (("schedules", sid, "overrides", i, "user"), f"unknown user {o.user!r}")
            for i, o in enumerate(schedule.overrides)
            if o.user not in users
        ]
    return out


class Directory(_Frozen):
    """Users, teams and schedules, every reference between them checked."""

    users: dict[str, User] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    schedules: dict[str, Schedule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> Directory:
        for section, entries in (("users", self.users), ("teams", self.teams), ("schedules", self.schedules)):
            for key, entry in entries.items():
                if key != entry.id:
                    raise ValueError(f"{section}.{key}: the entry's id is {entry.id!r}")
        dangling = dangling_references(self.users, self.teams, self.schedules)
        if dangling:
            loc, message = dangling[0]
            raise ValueError(f"{'.'.join(map(str, loc))}: {message}")
        return self
