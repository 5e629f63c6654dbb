"""`escalation oncall who` and `oncall shifts`, run as a user runs them, on a folder in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.notifier.directory.cli import oncall_app

runner = CliRunner()

DIRECTORY = """\
users:
  alice: {name: Alice Adams, time_zone: Europe/Berlin}
  bob: {name: Bob Brown, time_zone: Europe/Berlin}
schedules:
  primary:
    time_zone: Europe/Berlin
    layers:
      - type: weekly
        start: 2026-03-02T09:00:00
        participants: [alice, bob]
    overrides:
      - {user: alice, start: "2026-03-11T00:00:00+01:00", end: "2026-03-12T00:00:00+01:00"}
  nobody:
    time_zone: UTC
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    return tmp_path


def test_who_prints_the_user_on_call_and_until_when(folder: Path) -> None:
    result = runner.invoke(oncall_app, ["who", "primary", "--at", "2026-03-09T08:59:59+01:00", "-c", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "schedule primary (Europe/Berlin) at 2026-03-09T08:59:59+01:00",
        "on call: alice (Alice Adams)",
        "until:   2026-03-09T09:00:00+01:00",
    ]


def test_who_after_the_hand_off_reads_a_local_time_in_the_schedule_zone(folder: Path) -> None:
    result = runner.invoke(oncall_app, ["who", "primary", "--at", "2026-03-09T09:00", "--config", str(folder)])
    assert result.exit_code == 0, result.output
    assert "on call: bob (Bob Brown)" in result.output
    assert "until:   2026-03-11T00:00:00+01:00" in result.output  # alice's override


def test_who_takes_the_folder_from_the_environment(folder: Path) -> None:
    result = runner.invoke(
        oncall_app, ["who", "primary", "--at", "2026-03-11T12:00:00Z"], env={"ESCALATION_CONFIG_DIR": str(folder)}
    )
    assert result.exit_code == 0, result.output
    assert "on call: alice (Alice Adams)" in result.output


def test_who_on_an_empty_schedule_says_nobody(folder: Path) -> None:
    result = runner.invoke(oncall_app, ["who", "nobody", "--at", "2026-03-09T09:00:00Z", "-c", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == ["on call: nobody", "until:   no change within 90 days"]


def test_shifts_lists_the_hand_offs_and_the_override(folder: Path) -> None:
    args = ["shifts", "primary", "--from", "2026-03-09T00:00", "--to", "2026-03-17T00:00", "-c", str(folder)]
    result = runner.invoke(oncall_app, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "schedule primary (Europe/Berlin)",
        "2026-03-09T00:00:00+01:00  2026-03-09T09:00:00+01:00  alice (Alice Adams)",
        "2026-03-09T09:00:00+01:00  2026-03-11T00:00:00+01:00  bob (Bob Brown)",
        "2026-03-11T00:00:00+01:00  2026-03-12T00:00:00+01:00  alice (Alice Adams)",
        "2026-03-12T00:00:00+01:00  2026-03-16T09:00:00+01:00  bob (Bob Brown)",
        "2026-03-16T09:00:00+01:00  2026-03-17T00:00:00+01:00  alice (Alice Adams)",
    ]


def test_an_unknown_schedule_exits_2_naming_it(folder: Path) -> None:
    result = runner.invoke(oncall_app, ["who", "secondary", "-c", str(folder)])
    assert result.exit_code == 2
    assert f"error: unknown schedule 'secondary' in {folder}; known: nobody, primary" in result.output
    assert "Traceback" not in result.output


def test_a_broken_yaml_file_exits_2_naming_file_and_line(folder: Path) -> None:
    (folder / "directory.yaml").write_text(DIRECTORY.replace("participants: [alice, bob]", "participants: [alice, bob"))
    result = runner.invoke(oncall_app, ["who", "primary", "-c", str(folder)])
    assert result.exit_code == 2
    assert f"error: {folder / 'directory.yaml'}:11: (file): invalid YAML" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unknown_user_in_a_schedule_exits_2_naming_file_line_and_field(folder: Path) -> None:
    (folder / "directory.yaml").write_text(
        DIRECTORY.replace("participants: [alice, bob]", "participants: [alice, zed]")
    )
    result = runner.invoke(oncall_app, ["shifts", "primary", "-c", str(folder)])
    assert result.exit_code == 2
    expected = f"{folder / 'directory.yaml'}:10: schedules.primary.layers.0.participants.1: unknown user 'zed'"
    assert expected in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["who", "primary", "--at", "next tuesday"], "--at: 'next tuesday' is not an ISO 8601 time"),
        (["who", "primary", "--at", "0001-01-01T00:00:00Z"], "outside the years 1900 to 9000"),
        (["shifts", "primary", "--from", "2026-03-09T00:00", "--to", "2026-03-08T00:00"], "--to must follow --from"),
        (["shifts", "primary", "--from", "2026-01-01T00:00", "--to", "2028-01-01T00:00"], "longer than 366 days"),
    ],
)
def test_bad_times_exit_2_with_a_message(folder: Path, args: list[str], message: str) -> None:
    result = runner.invoke(oncall_app, [*args, "-c", str(folder)])
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_folder_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(oncall_app, ["who", "primary", "-c", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "configuration folder does not exist" in result.output
