"""Where the console forwards operator actions: `CONSOLE_INTAKE_URL` (an audit setting), else the
intake on this host at `INTAKE_PORT`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class _IntakePort(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    intake_port: int = Field(8081, description="Port of the intake on this host.")


def intake_url(configured: str | None) -> str:
    """The intake's base URL, without a trailing slash."""
    return (configured or f"http://127.0.0.1:{_IntakePort().intake_port}").rstrip("/")
