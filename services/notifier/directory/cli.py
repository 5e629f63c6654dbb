"""`escalation oncall`: who is on call for a schedule of the directory, and its coming shifts."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from services.notifier.directory.loader import load_directory
from services.notifier.directory.model import Directory, Schedule
from services.notifier.directory.oncall import shifts
from shared.yamlconfig import ConfigError

oncall_app = typer.Typer(help="Who is on call, from the schedules in the config folder.", no_args_is_help=True)

# How far `who` looks ahead for the end of the current shift.
WHO_HORIZON = timedelta(days=90)
# The longest window `shifts` lists (a year of 1h shifts is still quick).
MAX_WINDOW = timedelta(days=366)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config folder; default $ESCALATION_CONFIG_DIR.")
]
ScheduleArgument = Annotated[str, typer.Argument(metavar="SCHEDULE", help="Schedule id.")]
TIME_HELP = "ISO 8601, e.g. 2026-03-30T09:00:00+02:00; without an offset: the schedule's local time."


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _load(config_dir: Path | None, schedule_id: str) -> tuple[Directory, Schedule]:
    folder = config_dir or Path(os.environ.get("ESCALATION_CONFIG_DIR", "config"))
    try:
        directory = load_directory(folder)
    except ConfigError as exc:
        _fail(str(exc))
    schedule = directory.schedules.get(schedule_id)
    if schedule is None:
        known = ", ".join(sorted(directory.schedules)) or "none"
        _fail(f"unknown schedule {schedule_id!r} in {folder}; known: {known}")
    return directory, schedule


def _instant(text: str | None, option: str, schedule: Schedule, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        value = schedule.instant(datetime.fromisoformat(text.strip()))
    except ValueError:
        _fail(f"{option}: {text!r} is not an ISO 8601 time; {TIME_HELP}")
    if not 1900 <= value.year <= 9000:  # keeps window arithmetic clear of datetime's limits
        _fail(f"{option}: {text!r} lies outside the years 1900 to 9000")
    return value


def _names(directory: Directory, users: tuple[str, ...]) -> str:
    if not users:
        return "nobody"
    labels = []
    for user_id in users:
        user = directory.users.get(user_id)
        labels.append(f"{user_id} ({user.name})" if user is not None and user.name else user_id)
    return ", ".join(labels)


@oncall_app.command("who")
def who(
    schedule_id: ScheduleArgument,
    at: Annotated[str | None, typer.Option("--at", help=f"When; default now. {TIME_HELP}")] = None,
    config_dir: ConfigOption = None,
) -> None:
    """Print who is on call for SCHEDULE at a time (default now), and until when."""
    directory, schedule = _load(config_dir, schedule_id)
    when = _instant(at, "--at", schedule, datetime.now(UTC))
    current = shifts(schedule, when, when + WHO_HORIZON)[0]
    typer.echo(f"schedule {schedule.id} ({schedule.time_zone}) at {when.astimezone(schedule.zone).isoformat()}")
    typer.echo(f"on call: {_names(directory, current.users)}")
    if current.end < when + WHO_HORIZON:
        typer.echo(f"until:   {current.end.isoformat()}")
    else:
        typer.echo(f"until:   no change within {WHO_HORIZON.days} days")


@oncall_app.command("shifts")
def list_shifts(
    schedule_id: ScheduleArgument,
    from_: Annotated[str | None, typer.Option("--from", help=f"Window start; default now. {TIME_HELP}")] = None,
    to: Annotated[str | None, typer.Option("--to", help=f"Window end; default 7 days later. {TIME_HELP}")] = None,
    config_dir: ConfigOption = None,
) -> None:
    """Print the shifts of SCHEDULE in a window: start, end and who is on call."""
    directory, schedule = _load(config_dir, schedule_id)
    start = _instant(from_, "--from", schedule, datetime.now(UTC))
    end = _instant(to, "--to", schedule, start + timedelta(days=7))
    if end <= start:
        _fail("--to must follow --from")
    if end - start > MAX_WINDOW:
        _fail(f"the window is longer than {MAX_WINDOW.days} days")
    typer.echo(f"schedule {schedule.id} ({schedule.time_zone})")
    for shift in shifts(schedule, start, end):
        typer.echo(f"{shift.start.isoformat()}  {shift.end.isoformat()}  {_names(directory, shift.users)}")
