"""load_catalog on folders written into tmp_path: what a valid folder gives, and errors that name
the file, the line and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.escalator.config import load_catalog
from services.escalator.core.policy import LevelKind, Priority
from shared.yamlconfig import ConfigError

POLICIES = """\
policies:
  tiered:
    name: Tiered
    levels:
      - name: frontline
        delay: 5m
        targets:
          - type: webhook
            url: http://127.0.0.1:9/frontline
      - name: infrastructure
        kind: hierarchical
        delay: 1h30m
        targets:
          - type: team
            id: infra
defaults:
  escalation_policy: tiered
"""
# Lines in POLICIES: 2 the policy id, 5 the first level, 6 its delay, 10 the second level, 12 its
# delay, 13 its targets, 16 defaults, 17 the default policy.

SERVICES = """\
services:
  checkout:
    escalation_policy: tiered
    default_priority: P2
  search:
    escalation_policy: tiered
"""
# Lines in SERVICES: 2 checkout, 5 search, 6 search's policy.

UNREADABLE = "is not a duration; write e.g. '90s', '5m', '1h30m'"


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _error(folder: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_catalog(folder)
    return caught.value


def _check(error: ConfigError, path: Path, line: int | None, field: str, message: str) -> None:
    assert (error.path, error.line, error.field) == (path, line, field), str(error)
    assert message in error.message, error.message
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(error) == f"{where}: {field or '(file)'}: {error.message}"


# --- a valid folder ---------------------------------------------------------------------------------


def test_a_valid_folder_gives_every_service_policy_and_the_default(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        {
            "policies.yaml": POLICIES,
            "services.yml": SERVICES,
            "empty.yaml": "",
            "README.txt": "not: [yaml",
            "calendars.yaml": "calendars:\n  office:\n    timezone: Europe/Berlin\n    hours: {mon: ['09:00-17:00']}\n",
        },
    )
    catalog = load_catalog(folder)
    assert sorted(catalog.services) == ["checkout", "search"]
    assert sorted(catalog.policies) == ["tiered"]
    assert sorted(catalog.calendars) == ["office"]
    assert catalog.default_policy == "tiered"
    policy = catalog.policies["tiered"]
    assert policy.id == "tiered"
    assert policy.name == "Tiered"
    assert [lvl.name for lvl in policy.levels] == ["frontline", "infrastructure"]
    assert [lvl.delay for lvl in policy.levels] == [timedelta(minutes=5), timedelta(minutes=90)]
    assert [lvl.kind for lvl in policy.levels] == [LevelKind.FUNCTIONAL, LevelKind.HIERARCHICAL]
    assert [(t.type, t.url, t.id) for t in policy.levels[0].targets] == [
        ("webhook", "http://127.0.0.1:9/frontline", None)
    ]
    assert [(t.type, t.id) for t in policy.levels[1].targets] == [("team", "infra")]
    assert catalog.services["checkout"].default_priority is Priority.P2
    assert catalog.services["search"].default_priority is None
    assert catalog.policy_for("checkout") == policy
    assert catalog.policy_for("not-listed") == policy  # the default policy
    snapshot = catalog.snapshot_for("checkout")
    assert snapshot is not None
    assert (snapshot.policy, snapshot.default_priority, snapshot.calendar) == (policy, Priority.P2, None)


def test_a_folder_without_a_default_has_no_policy_for_unlisted_services(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, {"p.yaml": POLICIES.split("defaults:")[0], "s.yaml": SERVICES}))
    assert catalog.default_policy is None
    assert catalog.policy_for("not-listed") is None
    assert catalog.snapshot_for("not-listed") is None


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("delay: 5m", "delay: 5mins", 6, "policies.tiered.levels.0.delay", f"'5mins' {UNREADABLE}"),
        ("delay: 1h30m", "delay: 1h30", 12, "policies.tiered.levels.1.delay", f"'1h30' {UNREADABLE}"),
        ("delay: 5m", "delay: -5", 6, "policies.tiered.levels.0.delay", "a duration cannot be negative"),
        ("delay: 5m", "delay: [5]", 6, "policies.tiered.levels.0.delay", "a duration such as '5m'"),
        ("delay: 5m", "dealy: 5m", 6, "policies.tiered.levels.0.dealy", "Extra inputs are not permitted"),
        ("kind: hierarchical", "kind: sideways", 11, "policies.tiered.levels.1.kind", "'functional'"),
        ("id: infra", "name: infra", 14, "policies.tiered.levels.1.targets.0", "a team target needs an id"),
    ],
)
def test_a_bad_level_names_the_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    folder = _write(tmp_path, {"policies.yaml": POLICIES.replace(old, new, 1), "services.yaml": SERVICES})
    _check(_error(folder), tmp_path / "policies.yaml", line, field, message)


def test_missing_targets_name_the_level(tmp_path: Path) -> None:
    text = POLICIES.replace("        targets:\n          - type: team\n            id: infra\n", "")
    folder = _write(tmp_path, {"policies.yaml": text})
    _check(_error(folder), tmp_path / "policies.yaml", 10, "policies.tiered.levels.1.targets", "Field required")


def test_empty_targets_name_the_targets_line(tmp_path: Path) -> None:
    text = POLICIES.replace(
        "        targets:\n          - type: team\n            id: infra\n", "        targets: []\n"
    )
    _check(
        _error(_write(tmp_path, {"policies.yaml": text})),
        tmp_path / "policies.yaml",
        13,
        "policies.tiered.levels.1.targets",
        "at least 1 item",
    )


def test_missing_levels_name_the_policy(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"policies.yaml": "policies:\n  empty:\n    name: Empty\n"})
    _check(_error(folder), tmp_path / "policies.yaml", 2, "policies.empty.levels", "Field required")


def test_an_unknown_policy_reference_names_the_service_line(tmp_path: Path) -> None:
    services = SERVICES.replace("  search:\n    escalation_policy: tiered", "  search:\n    escalation_policy: nope")
    folder = _write(tmp_path, {"policies.yaml": POLICIES, "services.yaml": services})
    _check(_error(folder), tmp_path / "services.yaml", 6, "services.search.escalation_policy", "unknown policy 'nope'")


def test_an_unknown_calendar_reference_names_the_service_line(tmp_path: Path) -> None:
    services = SERVICES.replace("    default_priority: P2\n", "    default_priority: P2\n    calendar: moon\n")
    folder = _write(tmp_path, {"policies.yaml": POLICIES, "services.yaml": services})
    _check(_error(folder), tmp_path / "services.yaml", 5, "services.checkout.calendar", "unknown calendar 'moon'")


def test_an_unknown_default_policy_names_its_file_line_and_field(tmp_path: Path) -> None:
    # The defaults live in the second file; the error must point there, not at the first file read.
    policies = POLICIES.split("defaults:")[0]
    folder = _write(
        tmp_path,
        {"a-policies.yaml": policies, "b-defaults.yaml": "defaults:\n  escalation_policy: nope\n"},
    )
    _check(_error(folder), tmp_path / "b-defaults.yaml", 2, "defaults.escalation_policy", "'nope'")


def test_an_id_defined_in_two_files_names_the_second_file_and_the_first(tmp_path: Path) -> None:
    extra = "# more policies\npolicies:\n  tiered:\n    levels:\n      - targets: [{type: user, id: u1}]\n"
    folder = _write(tmp_path, {"policies.yaml": POLICIES, "zz-extra.yaml": extra})
    error = _error(folder)
    _check(error, tmp_path / "zz-extra.yaml", 3, "policies.tiered", f"already defined in {tmp_path / 'policies.yaml'}")


def test_a_service_defined_in_two_files_is_refused(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        {
            "policies.yaml": POLICIES,
            "services.yaml": SERVICES,
            "team-b.yaml": "services:\n  search: {escalation_policy: tiered}\n",
        },
    )
    _check(
        _error(folder),
        tmp_path / "team-b.yaml",
        2,
        "services.search",
        f"already defined in {tmp_path / 'services.yaml'}",
    )


def test_an_unknown_top_level_section_is_named(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"policies.yaml": POLICIES, "services.yaml": SERVICES + "escalations:\n  x: 1\n"})
    _check(
        _error(folder),
        tmp_path / "services.yaml",
        7,
        "escalations",
        "unknown section; use services, policies, calendars, defaults",
    )


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (SERVICES.replace("default_priority: P2", "default_priority: P2: x"), 4, "mapping values are not allowed"),
        (SERVICES.replace("  search:\n", "  search:\n  \tx: 1\n"), 6, "found character '\\t'"),
        (SERVICES + "  broken: [unclosed\n  other: 1\n", 8, "expected ',' or ']'"),
    ],
)
def test_invalid_yaml_names_the_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    folder = _write(tmp_path, {"policies.yaml": POLICIES, "services.yaml": text})
    _check(_error(folder), tmp_path / "services.yaml", line, "", f"invalid YAML: {problem}")


def test_a_duplicate_key_names_its_second_occurrence(tmp_path: Path) -> None:
    text = POLICIES.replace("        delay: 5m\n", "        delay: 5m\n        delay: 10m\n")
    folder = _write(tmp_path, {"policies.yaml": text})
    _check(_error(folder), tmp_path / "policies.yaml", 7, "policies.tiered.levels.0.delay", "duplicate key")


def test_a_duplicate_entry_id_in_one_file_is_a_duplicate_key(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        {"policies.yaml": POLICIES, "services.yaml": SERVICES + "  checkout:\n    escalation_policy: tiered\n"},
    )
    _check(_error(folder), tmp_path / "services.yaml", 7, "services.checkout", "duplicate key")


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"list.yaml": "- policies\n- services\n"})
    _check(_error(folder), tmp_path / "list.yaml", 1, "", "top level must be a mapping")


def test_a_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"policies.yaml": "# header\npolicies:\n  - tiered\n"})
    _check(_error(folder), tmp_path / "policies.yaml", 2, "policies", "must be a mapping of id to entry")


def test_an_infinite_delay_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"policies.yaml": POLICIES.replace("delay: 5m", "delay: .inf")})
    _check(_error(folder), tmp_path / "policies.yaml", 6, "policies.tiered.levels.0.delay", "duration")


def test_a_service_id_with_a_slash_is_refused_by_name(tmp_path: Path) -> None:
    """'/' separates the service from the dedup key in an incident key: 'web/api' would read back as 'web'."""
    folder = _write(tmp_path, {"policies.yaml": POLICIES, "services.yaml": SERVICES.replace("search:", "web/api:")})
    error = _error(folder)
    assert (error.path, error.line) == (tmp_path / "services.yaml", 5), str(error)
    assert error.field.startswith("services.web/api")
    assert "may not contain '/'" in error.message
