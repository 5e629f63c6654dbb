"""Cross-check of the config folder: every user, team and schedule a policy pages exists in the directory."""

from __future__ import annotations

from pathlib import Path

from services.notifier.directory.model import Directory
from shared.yamlconfig import ConfigError, section_entries

_KINDS = {"user": "users", "team": "teams", "schedule": "schedules"}


def unknown_targets(folder: Path, directory: Directory) -> list[ConfigError]:
    """One error per policy target naming a user, team or schedule the directory lacks (file, line, field)."""
    problems: list[ConfigError] = []
    for doc, policy_id, body in section_entries(folder, "policies"):
        levels = body.get("levels") if isinstance(body, dict) else None
        for i, level in enumerate(levels if isinstance(levels, list) else []):
            targets = level.get("targets") if isinstance(level, dict) else None
            for j, target in enumerate(targets if isinstance(targets, list) else []):
                if not isinstance(target, dict) or target.get("type") not in _KINDS:
                    continue
                kind, target_id = str(target["type"]), str(target.get("id"))
                if target_id not in getattr(directory, _KINDS[kind]):
                    loc = ("policies", policy_id, "levels", i, "targets", j)
                    field = f"policies.{policy_id}.levels.{i}.targets.{j}"
                    message = f"{kind} {target_id!r} is not in the directory ({_KINDS[kind]} section)"
                    problems.append(ConfigError(doc.path, doc.line_of(loc), field, message))
    return problems
