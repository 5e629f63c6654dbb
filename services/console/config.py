"""The config folder as the console reads it: the escalator's catalog and the notifier's directory,
re-read when a YAML file changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.escalator.config import load_catalog
from services.escalator.core.policy import Catalog
from services.notifier.directory.loader import load_directory
from services.notifier.directory.model import Directory
from shared.yamlconfig import ConfigError, folder_stamp


@dataclass(frozen=True)
class Loaded:
    """The folder's catalog and directory, or the error that stopped each."""

    catalog: Catalog | None
    directory: Directory | None
    catalog_error: str | None = None
    directory_error: str | None = None


class ConfigFolder:
    """Loads the folder once per change."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._loaded = Loaded(None, None)

    def current(self) -> Loaded:
        """The catalog and directory as the folder is now."""
        stamp = folder_stamp(self.folder)
        if stamp != self._stamp:
            self._stamp = stamp
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> Loaded:
        catalog: Catalog | None = None
        directory: Directory | None = None
        catalog_error = directory_error = None
        try:
            catalog = load_catalog(self.folder)
        except (ConfigError, OSError, ValueError) as exc:
            catalog_error = str(exc)
        try:
            directory = load_directory(self.folder)
        except (ConfigError, OSError, ValueError) as exc:
            directory_error = str(exc)
        return Loaded(catalog, directory, catalog_error, directory_error)
