"""Load the service catalog and policies from the YAML files of ESCALATION_CONFIG_DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from services.escalator.core.calendar import BusinessCalendar
from services.escalator.core.policy import Catalog, Policy, Service
from shared.yamlconfig import ConfigError, YamlDocument, load_yaml, yaml_files

# Read elsewhere: access (shared/auth.py), heartbeats (services/intake/heartbeats.py), users, teams
# and schedules (services/notifier/directory/loader.py).
SECTIONS = ("services", "policies", "calendars", "defaults", "access", "heartbeats", "users", "teams", "schedules")


def _entries(doc: YamlDocument, section: str) -> dict[str, Any]:
    value = doc.data.get(section) if isinstance(doc.data, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(doc.path, doc.line_of((section,)), section, "must be a mapping of id to entry")
    return value


M = TypeVar("M", Service, Policy, BusinessCalendar)


def _collect(
    doc: YamlDocument, section: str, model: type[M], into: dict[str, M], origin: dict[tuple[str, str], YamlDocument]
) -> None:
    """Validate every entry of one section of one file into `into`, rejecting ids seen before."""
    for entry_id, body in _entries(doc, section).items():
        loc = (section, entry_id)
        if loc in origin:
            raise ConfigError(
                doc.path, doc.line_of(loc), f"{section}.{entry_id}", f"already defined in {origin[loc].path}"
            )
        if not isinstance(body, dict):
            raise ConfigError(doc.path, doc.line_of(loc), f"{section}.{entry_id}", "must be a mapping")
        try:
            into[entry_id] = model.model_validate({**body, "id": entry_id})
        except ValidationError as exc:
            raise doc.error(exc, loc) from exc
        origin[loc] = doc


def load_catalog(folder: Path) -> Catalog:
    """Read every YAML file of `folder`; errors name the file, the line and the field."""
    services: dict[str, Service] = {}
    policies: dict[str, Policy] = {}
    calendars: dict[str, BusinessCalendar] = {}
    origin: dict[tuple[str, str], YamlDocument] = {}
    default_policy: str | None = None
    default_origin: YamlDocument | None = None
    docs = [load_yaml(p) for p in yaml_files(folder)]
    for doc in docs:
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            raise ConfigError(doc.path, 1, "", "top level must be a mapping")
        for key in doc.data:
            if key not in SECTIONS:
                raise ConfigError(
                    doc.path, doc.line_of((key,)), str(key), f"unknown section; use {', '.join(SECTIONS)}"
                )
        _collect(doc, "services", Service, services, origin)
        _collect(doc, "policies", Policy, policies, origin)
        _collect(doc, "calendars", BusinessCalendar, calendars, origin)
        defaults = _entries(doc, "defaults")
        for key in defaults:
            if key != "escalation_policy":
                raise ConfigError(
                    doc.path, doc.line_of(("defaults", key)), f"defaults.{key}", "unknown key; use escalation_policy"
                )
        if "escalation_policy" in defaults:
            default_policy = str(defaults["escalation_policy"])
            default_origin = doc
    for service in services.values():
        if service.escalation_policy not in policies:
            doc = origin[("services", service.id)]
            where: tuple[str, ...] = ("services", service.id, "escalation_policy")
            raise ConfigError(
                doc.path, doc.line_of(where), ".".join(where), f"unknown policy {service.escalation_policy!r}"
            )
        if service.calendar is not None and service.calendar not in calendars:
            doc = origin[("services", service.id)]
            where = ("services", service.id, "calendar")
            raise ConfigError(doc.path, doc.line_of(where), ".".join(where), f"unknown calendar {service.calendar!r}")
    if default_policy is not None and default_policy not in policies and default_origin is not None:
        where = ("defaults", "escalation_policy")
        raise ConfigError(
            default_origin.path, default_origin.line_of(where), ".".join(where), f"unknown policy {default_policy!r}"
        )
    try:
        return Catalog(services=services, policies=policies, calendars=calendars, default_policy=default_policy)
    except ValidationError as exc:
        first = docs[0].path if docs else folder
        raise ConfigError(first, None, "", exc.errors()[0]["msg"]) from exc
