"""Configuration folders: valid ones load, every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.escalator.config import load_catalog
from shared.yamlconfig import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config"

GOOD = """\
services:
  web:
    escalation_policy: p
    calendar: office
policies:
  p:
    levels:
      - delay: 5m
        targets:
          - type: webhook
            url: http://127.0.0.1:9/x
calendars:
  office:
    timezone: UTC
    hours: {mon: ["09:00-17:00"]}
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_the_shipped_examples_load() -> None:
    catalog = load_catalog(EXAMPLES)
    assert {
        "checkout-api",
        "web-servers",
        "security-monitoring",
        "customer-portal",
        "customer-support",
        "core-network",
    } <= set(catalog.services)
    assert catalog.default_policy == "frontline-then-infrastructure"


def test_a_valid_folder_loads(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, {"a.yaml": GOOD}))
    snapshot = catalog.snapshot_for("web")
    assert snapshot is not None
    assert snapshot.calendar is not None
    assert snapshot.calendar.id == "office"
    assert snapshot.policy.levels[0].delay.total_seconds() == 300


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (GOOD.replace("delay: 5m", "delay: 5x"), 8, "policies.p.levels.0.delay", "is not a duration"),
        (
            GOOD.replace("escalation_policy: p", "escalation_policy: nope"),
            3,
            "services.web.escalation_policy",
            "unknown policy 'nope'",
        ),
        (GOOD.replace("calendar: office", "calendar: moon"), 4, "services.web.calendar", "unknown calendar"),
        (GOOD.replace("timezone: UTC", "timezone: Mars/Base"), 14, "calendars.office.timezone", "unknown time zone"),
        (GOOD + "extras: 1\n", 16, "extras", "unknown section"),
        (GOOD.replace("    levels:\n", "    levls:\n"), 7, "policies.p.levls", "Extra inputs are not permitted"),
        (
            GOOD.replace(
                "          - type: webhook\n            url: http://127.0.0.1:9/x\n", "          - type: team\n"
            ),
            10,
            "policies.p.levels.0.targets.0",
            "needs an id",
        ),
        (
            GOOD.replace("services:\n", "services:\n  web: {escalation_policy: p}\n", 1),
            3,
            "services.web",
            "duplicate key",
        ),
        ("services: [\n", 2, "", "invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, line: int, field: str, message: str) -> None:
    _write(tmp_path, {"a.yaml": text})
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    error = caught.value
    assert error.path == tmp_path / "a.yaml"
    assert (error.line, error.field) == (line, field), str(error)
    assert message in error.message
    assert str(error).startswith(f"{tmp_path / 'a.yaml'}:{line}: {field or '(file)'}: ")


def test_an_id_defined_in_two_files_names_both(tmp_path: Path) -> None:
    _write(tmp_path, {"a.yaml": GOOD, "b.yaml": "policies:\n  p:\n    levels: []\n"})
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    assert caught.value.path == tmp_path / "b.yaml"
    assert caught.value.line == 2
    assert f"already defined in {tmp_path / 'a.yaml'}" in caught.value.message


def test_repeat_without_any_delay_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("delay: 5m", "delay: 0s").replace("    levels:\n", "    repeat: forever\n    levels:\n")
    with pytest.raises(ConfigError, match="repeat needs repeat_delay"):
        load_catalog(_write(tmp_path, {"a.yaml": text}))


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_catalog(tmp_path / "nope")
