"""The checked-in OpenAPI documents are the ones the services serve (regenerate with
`escalation openapi intake > docs/openapi/intake.json`, the same for audit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import openapi_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("service", ["intake", "audit"])
def test_checked_in_openapi_is_current(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATION_CONFIG_DIR", str(ROOT / "examples" / "config"))
    monkeypatch.delenv("AUDIT_SIGNING_KEY", raising=False)
    stored = (ROOT / "docs" / "openapi" / f"{service}.json").read_text()
    assert openapi_json(service) == stored, f"regenerate: escalation openapi {service} > docs/openapi/{service}.json"
