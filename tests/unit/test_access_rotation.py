"""Token rotation without a restart: the access list follows the config folder, but never opens up."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException

from shared.auth import Role, load_access, token_hash
from shared.yamlconfig import ConfigError

READERS = frozenset({Role.AUDITOR})


def _entry(name: str, token: str) -> str:
    return f"  {name}:\n    role: auditor\n    token_sha256: {token_hash(token)}\n"


def _write(folder: Path, *entries: str) -> None:
    # A different size each time, so the change shows even within one mtime tick.
    (folder / "access.yaml").write_text("access:\n" + "".join(entries))


def test_a_new_token_works_and_the_removed_one_stops_after_refresh(tmp_path: Path) -> None:
    _write(tmp_path, _entry("old", "tok-old"))
    access = load_access(tmp_path)
    assert access.authenticate("Bearer tok-old", READERS).name == "old"
    assert access.refresh() is False  # nothing changed
    _write(tmp_path, _entry("old", "tok-old"), _entry("new-key", "tok-new"))
    assert access.refresh() is True
    assert access.authenticate("Bearer tok-new", READERS).name == "new-key"
    _write(tmp_path, _entry("new-key", "tok-new"))
    assert access.refresh() is True
    with pytest.raises(HTTPException) as caught:
        access.authenticate("Bearer tok-old", READERS)
    assert caught.value.status_code == 401


def test_a_broken_file_keeps_the_previous_tokens(tmp_path: Path) -> None:
    _write(tmp_path, _entry("old", "tok-old"))
    access = load_access(tmp_path)
    (tmp_path / "access.yaml").write_text("access:\n  old:\n    role: wizard\n    token_sha256: nothex\n")
    assert access.refresh() is False
    assert access.authenticate("Bearer tok-old", READERS).name == "old"


def test_removing_every_token_does_not_open_the_apis(tmp_path: Path) -> None:
    _write(tmp_path, _entry("old", "tok-old"))
    access = load_access(tmp_path)
    (tmp_path / "access.yaml").write_text("services: {}\n")
    assert access.refresh() is False
    assert access.enabled
    with pytest.raises(HTTPException) as caught:
        access.authenticate(None, READERS)
    assert caught.value.status_code == 401


def test_an_open_folder_becomes_protected_when_a_token_appears(tmp_path: Path) -> None:
    access = load_access(tmp_path)
    assert not access.enabled
    _write(tmp_path, _entry("first", "tok-first"))
    assert access.refresh() is True
    assert access.enabled
    assert access.authenticate("Bearer tok-first", READERS).name == "first"


def test_an_integration_key_for_a_service_with_a_slash_is_refused(tmp_path: Path) -> None:
    (tmp_path / "access.yaml").write_text(
        f"access:\n  prom:\n    role: integration\n    service: web/api\n    token_sha256: {token_hash('k')}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_access(tmp_path)
    assert caught.value.line == 4
    assert "may not contain '/'" in caught.value.message
