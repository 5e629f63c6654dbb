"""Settings of the console (read by the audit service that serves it)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """Where the console forwards operator actions."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    intake_port: int = Field(8081, description="Port of the intake on this host (the default target).")
    console_intake_url: str | None = Field(
        None, description="Base URL of the intake's operator API; default http://127.0.0.1:$INTAKE_PORT."
    )

    @property
    def intake_url(self) -> str:
        """The intake's base URL, without a trailing slash."""
        return (self.console_intake_url or f"http://127.0.0.1:{self.intake_port}").rstrip("/")
