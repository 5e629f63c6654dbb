"""Configuration by environment variables: the names are part of the public contract."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_DATABASE_URL = "postgresql://escalation@127.0.0.1:15432/escalation"


class CommonSettings(BaseSettings):
    """Settings every service reads."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(DEFAULT_KAFKA, description="Kafka bootstrap servers, comma-separated.")
    escalation_config_dir: Path = Field(
        Path("config"), description="Folder of YAML: services, policies (and later teams, schedules)."
    )
    log_level: str = Field("INFO", description="Log level of the JSON logs.")
    topic_partitions: int = Field(8, ge=1, description="Partitions of topics created on start.")
    link_secret: SecretStr | None = Field(
        None,
        description=(
            "HMAC key of the acknowledge/resolve links: the notifier signs them, the intake accepts them. "
            "Unset: notifications carry no links and the intake refuses any."
        ),
    )


class IntakeSettings(CommonSettings):
    """Intake: HTTP in, Kafka out."""

    intake_port: int = Field(8081, description="HTTP port of the intake API.")
    intake_rate_per_second: float = Field(
        100.0, gt=0, description="Events per second each integration key (or caller) may send on average."
    )
    intake_rate_burst: int = Field(1000, ge=1, description="Events a key may send at once above that rate.")
    intake_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes of the intake (one per core).")
    intake_ack_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait for Kafka's acknowledgement before answering 503."
    )


class EscalatorSettings(CommonSettings):
    """Escalator: the Faust worker."""

    escalator_port: int = Field(8082, description="HTTP port of the escalator's health and metrics.")
    escalator_data_dir: Path = Field(Path(".stack/escalator"), description="Faust's local state folder.")
    escalator_app_id: str = Field(
        "escalator", description="Faust app id: consumer group and state topic names; workers of one group share it."
    )
    escalator_session_timeout_seconds: float = Field(
        10.0, gt=0, description="How soon a crashed worker's partitions move to the others."
    )
    escalator_concurrency: int = Field(
        256,
        ge=1,
        description="Commands in flight per worker (different incidents; one incident's commands stay in order).",
    )


class NotifierSettings(CommonSettings):
    """Notifier: escalation events in, deliveries out."""

    notifier_port: int = Field(8083, description="HTTP port of the notifier's health and metrics.")
    notifier_max_attempts: int = Field(20, ge=1, description="Delivery attempts before dead-lettering.")
    notifier_backoff_base_seconds: float = Field(0.5, gt=0, description="First retry delay; doubles.")
    notifier_commit_interval_seconds: float = Field(
        0.5,
        ge=0,
        description="Longest time between two offset commits while events flow (a crash re-reads at most this much).",
    )
    notifier_backoff_max_seconds: float = Field(30.0, gt=0, description="Longest delay between two attempts.")
    notifier_channel_rate_per_second: float = Field(1000.0, gt=0, description="Sends per second per channel.")
    notifier_target_rate_per_second: float = Field(
        50.0, gt=0, description="Sends per second to one address (a webhook URL, a mailbox); bursts of twice that."
    )
    notifier_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key signing webhook deliveries (X-Escalation-Signature); unset: unsigned."
    )
    notifier_smtp_host: str | None = Field(None, description="SMTP server for email; unset: no email channel.")
    notifier_smtp_port: int = Field(25, ge=1, le=65535)
    notifier_smtp_sender: str = Field("escalation@localhost", description="From address of notification emails.")
    notifier_smtp_username: str | None = None
    notifier_smtp_password: SecretStr | None = None
    notifier_smtp_starttls: bool = False
    notifier_link_base_url: str = Field("http://127.0.0.1:8081", description="Intake URL the links point at.")
    notifier_link_ttl_hours: float = Field(24.0, gt=0)
    notifier_pagerduty_url: str = Field("https://events.pagerduty.com", description="Events v2 endpoint base.")
    notifier_opsgenie_url: str = Field("https://api.opsgenie.com", description="Opsgenie Alert API base.")
    notifier_opsgenie_key: SecretStr | None = Field(None, description="GenieKey; unset: no Opsgenie channel.")


class AuditSettings(CommonSettings):
    """Audit: every topic in, PostgreSQL history out, auditor API."""

    database_url: str = Field(DEFAULT_DATABASE_URL, description="PostgreSQL DSN of the audit store.")
    audit_port: int = Field(8084, description="HTTP port of the audit API.")
    audit_signing_key: SecretStr | None = Field(
        None, description="Ed25519 private key (base64 of the 32-byte seed, or PEM) signing chain checkpoints."
    )
    audit_consumer_group: str = Field(
        "audit", min_length=1, description="Kafka consumer group and the name its offsets are stored under."
    )

    @field_validator("audit_signing_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    audit_checkpoint_seconds: float = Field(60.0, gt=0, description="How often a signed checkpoint is written.")
    audit_batch_wait_ms: int = Field(
        100,
        ge=0,
        le=5000,
        description="Longest the broker holds the audit's fetch to fill a batch (0: answer at once). "
        "Fewer, larger transactions when the audit keeps up; rows reach the log at most this much later.",
    )
    console_intake_url: str | None = Field(
        None,
        description="Base URL of the intake the web console forwards operator actions to "
        "(default http://127.0.0.1:$INTAKE_PORT).",
    )
