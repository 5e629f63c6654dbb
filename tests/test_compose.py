"""docker-compose.yml cannot run here; keep it true to the code's settings by reading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from services.stack.processes import DEFAULT_PORTS, PORT_VARS, SERVICES
from shared.settings import AuditSettings, CommonSettings, EscalatorSettings, IntakeSettings, NotifierSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, type[CommonSettings]] = {
    "intake": IntakeSettings,
    "escalator": EscalatorSettings,
    "notifier": NotifierSettings,
    "audit": AuditSettings,
}


def _fields(settings: type[CommonSettings]) -> dict[str, Any]:
    """Return the settings' fields with their defaults, as its JSON schema states them."""
    properties: dict[str, Any] = settings.model_json_schema()["properties"]
    return properties


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_has_kafka_postgres_and_the_four_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"kafka", "postgres", *SERVICES}
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


def test_each_service_runs_its_own_command_on_its_configured_port() -> None:
    services = _compose()["services"]
    for name in SERVICES:
        svc = services[name]
        assert svc["build"] == "."
        assert svc["command"] == [name]
        port_var = PORT_VARS[name]
        port = int(svc["environment"][port_var])
        assert port == DEFAULT_PORTS[name] == _fields(SETTINGS[name])[port_var.lower()]["default"]
        assert svc["ports"] == [f"{port}:{port}"]


def test_every_environment_variable_is_one_the_code_reads() -> None:
    services = _compose()["services"]
    for name in SERVICES:
        known = {field.upper() for field in _fields(SETTINGS[name])}
        env = services[name]["environment"]
        assert set(env) <= known, f"{name}: {set(env) - known} are read by no setting"
        assert {"KAFKA_BOOTSTRAP_SERVERS", "ESCALATION_CONFIG_DIR"} <= set(env)
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "DATABASE_URL" in services["audit"]["environment"]
    assert "DATABASE_URL" in {f.upper() for f in _fields(AuditSettings)}
    assert "DATABASE_URL" not in {f.upper() for f in _fields(CommonSettings)}


def test_dockerfile_entrypoint_is_the_escalation_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["escalation"]' in dockerfile
    assert 'escalation = "services.cli:main"' in (ROOT / "pyproject.toml").read_text()
