"""Load the directory (`users`, `teams`, `schedules`) from the YAML files of ESCALATION_CONFIG_DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from services.notifier.directory.model import Directory, Schedule, Team, User, dangling_references
from shared.yamlconfig import ConfigError, YamlDocument, load_yaml, yaml_files

SECTIONS = ("users", "teams", "schedules")

M = TypeVar("M", User, Team, Schedule)


def _collect(
    doc: YamlDocument, section: str, model: type[M], into: dict[str, M], origin: dict[tuple[str, str], YamlDocument]
) -> None:
    """Validate every entry of one section of one file into `into`, rejecting ids seen before."""
    entries: Any = doc.data.get(section)
    if entries is None:
        return
    if not isinstance(entries, dict):
        raise ConfigError(doc.path, doc.line_of((section,)), section, "must be a mapping of id to entry")
    for key, body in entries.items():
        entry_id = str(key)
        loc = (section, key)
        if (section, entry_id) in origin:
            first = origin[(section, entry_id)].path
            raise ConfigError(doc.path, doc.line_of(loc), f"{section}.{entry_id}", f"already defined in {first}")
        if not isinstance(body, dict):
            raise ConfigError(doc.path, doc.line_of(loc), f"{section}.{entry_id}", "must be a mapping")
        try:
            into[entry_id] = model.model_validate({**body, "id": entry_id})
        except ValidationError as exc:
            raise doc.error(exc, loc) from exc
        origin[(section, entry_id)] = doc


def load_directory(folder: Path) -> Directory:
    """Read the directory sections of every YAML file of `folder`; errors name the file, the line and the field."""
    users: dict[str, User] = {}
    teams: dict[str, Team] = {}
    schedules: dict[str, Schedule] = {}
    origin: dict[tuple[str, str], YamlDocument] = {}
    for path in yaml_files(folder):
        doc = load_yaml(path)
        if not isinstance(doc.data, dict):
            continue  # an empty file; other shapes are the catalog loader's to refuse
        _collect(doc, "users", User, users, origin)
        _collect(doc, "teams", Team, teams, origin)
        _collect(doc, "schedules", Schedule, schedules, origin)
    for loc, message in dangling_references(users, teams, schedules):
        doc = origin[(str(loc[0]), str(loc[1]))]
        raise ConfigError(doc.path, doc.line_of(loc), ".".join(map(str, loc)), message)
    try:
        return Directory(users=users, teams=teams, schedules=schedules)
    except ValidationError as exc:  # every check above should have caught it first
        raise ConfigError(folder, None, "", exc.errors()[0]["msg"]) from exc
