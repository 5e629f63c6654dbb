"""The `heartbeats` section: read by the intake, tolerated by the escalator, errors name file and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.escalator.config import load_catalog
from services.intake.heartbeats import load_heartbeats
from shared.events import Severity
from shared.yamlconfig import ConfigError

GOOD = """\
services:
  storage: {escalation_policy: p}
policies:
  p:
    levels: [{name: l1, targets: [{type: team, id: ops}]}]
heartbeats:
  nightly-backup:
    service: storage
    interval: 26h
    summary: Nightly backup did not report
  cron:
    service: storage
    interval: 90s
    severity: warning
"""


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_monitors_are_read_with_their_defaults(tmp_path: Path) -> None:
    monitors = load_heartbeats(_write(tmp_path, GOOD))
    assert set(monitors) == {"nightly-backup", "cron"}
    assert monitors["nightly-backup"].interval == timedelta(hours=26)
    assert monitors["nightly-backup"].severity is Severity.CRITICAL
    assert monitors["cron"].severity is Severity.WARNING
    assert monitors["cron"].summary is None


def test_the_escalator_reads_the_same_folder_without_complaint(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, GOOD))
    assert set(catalog.services) == {"storage"}


def test_a_missing_folder_has_no_monitors(tmp_path: Path) -> None:
    assert load_heartbeats(tmp_path / "absent") == {}


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ("heartbeats:\n  a:\n    service: s\n    interval: soon\n", 4, "heartbeats.a.interval"),
        ("heartbeats:\n  a:\n    service: s\n    interval: 0s\n", 4, "heartbeats.a.interval"),
        ("heartbeats:\n  a:\n    interval: 5m\n", 2, "heartbeats.a.service"),
        ("heartbeats:\n  a:\n    service: s\n    interval: 5m\n    colour: red\n", 5, "heartbeats.a.colour"),
        ("heartbeats: [a, b]\n", 1, "heartbeats"),
    ],
)
def test_a_bad_entry_names_the_file_line_and_field(tmp_path: Path, body: str, line: int, field: str) -> None:
    folder = _write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_heartbeats(folder)
    assert caught.value.path == folder / "config.yaml"
    assert caught.value.field == field
    assert caught.value.line == line


def test_a_name_defined_in_two_files_is_refused(tmp_path: Path) -> None:
    entry = "heartbeats:\n  a:\n    service: s\n    interval: 5m\n"
    _write(tmp_path, entry, "one.yaml")
    _write(tmp_path, entry, "two.yaml")
    with pytest.raises(ConfigError, match="defined twice"):
        load_heartbeats(tmp_path)
