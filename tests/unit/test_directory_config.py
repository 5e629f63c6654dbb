"""load_directory on folders written into tmp_path: what a valid folder gives, and errors that name
the file, the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notifier.directory.loader import SECTIONS, load_directory
from services.notifier.directory.model import ContactMethod, Urgency
from services.notifier.directory.oncall import contacts_for, on_call, resolve_target
from shared.yamlconfig import ConfigError

ROOT = Path(__file__).resolve().parents[2]

USERS = """\
users:
  alice:
    name: Alice Adams
    time_zone: Europe/Berlin
    contact_methods:
      - {type: email, address: alice@example.com}
      - {type: sms, address: "+49 170 1234567", name: mobile}
    notification_rules:
      - {urgency: high, contact: email}
      - {urgency: high, contact: mobile, delay: 5m}
  bob:
    name: Bob Brown
    time_zone: America/New_York
    contact_methods:
      - {type: slack, address: "https://hooks.slack.example/T1/B2"}
"""
# Lines in USERS: 2 alice, 4 her zone, 6 her email, 10 her mobile rule, 11 bob, 13 his zone.

TEAMS = """\
teams:
  infra:
    name: Infrastructure
    members: [alice, bob]
    schedule: infra-weekly
  frontline:
    members:
      - alice
      - bob
schedules:
  infra-weekly:
    name: Infrastructure on call
    time_zone: Europe/Berlin
    layers:
      - type: weekly
        start: 2026-03-02T09:00:00
        participants: [alice, bob]
    overrides:
      - user: bob
        start: 2026-03-03T00:00:00+01:00
        end: 2026-03-04T00:00:00+01:00
"""
# Lines in TEAMS: 2 infra, 4 its members, 5 its schedule, 6 frontline, 7 its members (8, 9 each),
# 11 the schedule, 13 its zone, 14 layers, 15 the first layer, 16 its start, 17 participants, 19 the override.


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _error(folder: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_directory(folder)
    return caught.value


def _check(error: ConfigError, path: Path, line: int | None, field: str, message: str) -> None:
    assert (error.path, error.line, error.field) == (path, line, field), str(error)
    assert message in error.message, error.message


def test_a_valid_folder_gives_users_teams_and_schedules(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        {
            "users.yaml": USERS,
            "teams.yml": TEAMS,
            "policies.yaml": "policies: {}\nservices: {}\n",  # other loaders' sections are left alone
            "empty.yaml": "",
            "notes.txt": "users: [",
        },
    )
    directory = load_directory(folder)
    assert sorted(directory.users) == ["alice", "bob"]
    assert sorted(directory.teams) == ["frontline", "infra"]
    assert list(directory.schedules) == ["infra-weekly"]
    alice = directory.users["alice"]
    assert (alice.id, alice.name, alice.time_zone) == ("alice", "Alice Adams", "Europe/Berlin")
    mobile = ContactMethod(type="sms", address="+49 170 1234567", name="mobile")
    assert contacts_for(alice, Urgency.HIGH, timedelta(minutes=5))[1] == mobile
    assert directory.teams["frontline"].members == ("alice", "bob")
    schedule = directory.schedules["infra-weekly"]
    assert schedule.layers[0].start == datetime(2026, 3, 2, 9)  # YAML's timestamp, local to the schedule
    monday = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert on_call(schedule, monday) == ["alice"]
    assert on_call(schedule, monday + timedelta(days=1)) == ["bob"]  # the override
    assert resolve_target(directory, "team", "infra", monday).users == ("alice",)


def test_a_folder_without_directory_sections_gives_an_empty_directory(tmp_path: Path) -> None:
    directory = load_directory(_write(tmp_path, {"policies.yaml": "policies: {}\n"}))
    assert (directory.users, directory.teams, directory.schedules) == ({}, {}, {})


def test_the_example_directory_loads_and_matches_the_example_policies() -> None:
    directory = load_directory(ROOT / "examples" / "config")
    assert {"frontline", "infrastructure"} <= set(directory.teams)
    schedule = directory.schedules[directory.teams["infrastructure"].schedule or ""]
    assert schedule.layers[0].type == "weekly"
    assert on_call(schedule, datetime(2026, 12, 22, tzinfo=UTC)) == ["erin"]
    assert on_call(schedule, datetime(2026, 12, 25, tzinfo=UTC)) == ["carol"]  # the Christmas override
    assert SECTIONS == ("users", "teams", "schedules")


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("members: [alice, bob]", "members: [alice, zed]", 4, "teams.infra.members.1", "unknown user 'zed'"),
        ("      - bob\nschedules", "      - zed\nschedules", 9, "teams.frontline.members.1", "unknown user 'zed'"),
        ("schedule: infra-weekly", "schedule: nights", 5, "teams.infra.schedule", "unknown schedule 'nights'"),
        (
            "participants: [alice, bob]",
            "participants: [alice, zed]",
            17,
            "schedules.infra-weekly.layers.0.participants.1",
            "unknown user 'zed'",
        ),
        ("  - user: bob", "  - user: zed", 19, "schedules.infra-weekly.overrides.0.user", "unknown user 'zed'"),
        (
            "time_zone: Europe/Berlin\n    layers",
            "time_zone: Europe/Atlantis\n    layers",
            13,
            "schedules.infra-weekly.time_zone",
            "unknown time zone 'Europe/Atlantis'",
        ),
        ("type: weekly", "type: weekly\n        shift: 3d", 15, "schedules.infra-weekly.layers.0", "use type: custom"),
        ("type: weekly", "type: custom\n        shift: 3days", 16, "schedules.infra-weekly.layers.0.shift", "'3days'"),
        ("start: 2026-03-02T09:00:00", "strat: 2026-03-02T09:00:00", 16, "schedules.infra-weekly.layers.0.strat", ""),
    ],
)
def test_a_bad_team_or_schedule_names_the_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in TEAMS
    folder = _write(tmp_path, {"users.yaml": USERS, "teams.yaml": TEAMS.replace(old, new, 1)})
    _check(_error(folder), tmp_path / "teams.yaml", line, field, message)


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("America/New_York", "America/Gotham", 13, "users.bob.time_zone", "unknown time zone 'America/Gotham'"),
        ("delay: 5m", "delay: 5 minutes", 10, "users.alice.notification_rules.1.delay", "is not a duration"),
        ("address: alice@example.com", "address: alice", 6, "users.alice.contact_methods.0", "not an email"),
        ("contact: mobile", "contact: pager", 8, "users.alice.notification_rules", "rule 1: 'pager' is neither"),
    ],
)
def test_a_bad_user_names_the_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    assert old in USERS
    folder = _write(tmp_path, {"users.yaml": USERS.replace(old, new, 1), "teams.yaml": TEAMS})
    _check(_error(folder), tmp_path / "users.yaml", line, field, message)


def test_an_id_defined_in_two_files_names_the_second_file_and_the_first(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"a.yaml": USERS, "b.yaml": "# more\nusers:\n  bob: {name: Other Bob}\n"})
    _check(_error(folder), tmp_path / "b.yaml", 3, "users.bob", f"already defined in {tmp_path / 'a.yaml'}")


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("users: [alice]\n", 1, "users", "must be a mapping of id to entry"),
        ("teams:\n  ops: [alice]\n", 2, "teams.ops", "must be a mapping"),
        ("schedules:\n  s: {time_zone: UTC\n", 3, "", "invalid YAML"),
        ("schedules:\n  s: {}\n", 2, "schedules.s.time_zone", "Field required"),
    ],
)
def test_a_malformed_section_names_its_line(tmp_path: Path, text: str, line: int, field: str, message: str) -> None:
    _check(_error(_write(tmp_path, {"d.yaml": text})), tmp_path / "d.yaml", line, field, message)


def test_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    _check(_error(tmp_path / "nope"), tmp_path / "nope", None, "", "does not exist")
