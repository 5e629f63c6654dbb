"""`escalation policy check` also refuses policy targets the directory does not know, naming file and line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli import app

POLICY = """\
services:
  checkout: {escalation_policy: p}
policies:
  p:
    levels:
      - name: first
        targets:
          - {type: team, id: infra}
          - {type: webhook, url: "http://127.0.0.1:9/hook"}
      - name: second
        targets:
          - {type: schedule, id: ghost-rotation}
"""

DIRECTORY = """\
users:
  alice:
    contact_methods: [{type: email, address: alice@example.com}]
teams:
  infra: {members: [alice]}
"""


def test_a_known_team_passes_and_an_unknown_schedule_is_named_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(POLICY)
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    result = CliRunner().invoke(app, ["policy", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'policies.yaml'}:12: policies.p.levels.1.targets.0:" in result.output
    assert "schedule 'ghost-rotation' is not in the directory" in result.output
    assert "infra" not in result.output


def test_a_folder_whose_targets_all_exist_is_ok(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(POLICY.replace("ghost-rotation", "on-call"))
    (tmp_path / "directory.yaml").write_text(
        DIRECTORY
        + "schedules:\n  on-call:\n    time_zone: UTC\n"
        + "    layers: [{type: daily, start: '2026-01-01T09:00:00', participants: [alice]}]\n"
    )
    result = CliRunner().invoke(app, ["policy", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 users, 1 teams, 1 schedules: ok" in result.output
