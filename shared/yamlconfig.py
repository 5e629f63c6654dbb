"""YAML configuration files read with line numbers, so every error names file, line and field."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Loc = tuple[str | int, ...]


class ConfigError(ValueError):
    """A configuration file is wrong; the message names the file, the line and the field."""

    def __init__(self, path: Path, line: int | None, field_: str, message: str) -> None:
        self.path, self.line, self.field, self.message = path, line, field_, message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {field_ or '(file)'}: {message}")


@dataclass
class YamlDocument:
    """A parsed YAML file and the line (1-based) of every node, by its path."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Return the line of the deepest known node on `loc`'s path."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def error(self, exc: ValidationError, prefix: Loc = ()) -> ConfigError:
        """Turn a pydantic error on (part of) this document into a ConfigError."""
        errors = exc.errors()
        # A misspelt key shows as "extra" and as "missing": the extra one points at the typo.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = (*prefix, *(p for p in first["loc"] if isinstance(p, str | int)))
        return ConfigError(self.path, self.line_of(loc), ".".join(str(p) for p in loc), first["msg"])


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: Path) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if key in out:
                raise ConfigError(path, key_node.start_mark.line + 1, ".".join(map(str, (*loc, key))), "duplicate key")
            lines[(*loc, key)] = key_node.start_mark.line + 1  # an entry is where its key is written
            out[key] = _convert(value_node, (*loc, key), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, i), lines, path) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_yaml(path: Path) -> YamlDocument:
    """Read one YAML file; syntax errors become ConfigError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, "", f"cannot read: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError(path, line, "", f"invalid YAML: {exc.problem}") from exc
    doc = YamlDocument(path=path, data=None)
    if node is not None:
        doc.data = _convert(node, (), doc.lines, path)
    return doc


def yaml_files(folder: Path) -> list[Path]:
    """Return the YAML files of a configuration folder in a stable order."""
    if not folder.is_dir():
        raise ConfigError(folder, None, "", "configuration folder does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def section_entries(folder: Path, section: str) -> Iterator[tuple[YamlDocument, str, Any]]:
    """(document, name, body) of every entry of `section` across the folder's YAML files, in file
    order; a name defined twice, or a section that is not a mapping, raises ConfigError naming the
    file and line. A missing folder has no entries."""
    try:
        files = yaml_files(folder)
    except ConfigError:
        return
    seen: dict[str, Path] = {}
    for path in files:
        doc = load_yaml(path)
        entries = doc.data.get(section) if isinstance(doc.data, dict) else None
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise ConfigError(path, doc.line_of((section,)), section, "must be a mapping of name to entry")
        for key, body in entries.items():
            name = str(key)
            if name in seen:
                raise ConfigError(
                    path, doc.line_of((section, key)), f"{section}.{name}", f"defined twice (first in {seen[name]})"
                )
            seen[name] = path
            yield doc, name, body


def folder_stamp(folder: Path | None) -> tuple[tuple[str, int, int], ...]:
    """What changes when a YAML file of the folder is added, removed or written (for hot reloads)."""
    if folder is None:
        return ()
    try:
        files = yaml_files(folder)
    except ConfigError:
        return ()
    stamps = []
    for path in files:
        with contextlib.suppress(OSError):
            stat = path.stat()
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)
