"""`escalation stack`: Kafka, PostgreSQL and the four services on this machine, by pid."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.stack import kafka, postgres, processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# Variables a caller's environment may carry (a test stack's) that must not reach a command's workers.
FOREIGN = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "ESCALATION_CONFIG_DIR",
    "AUDIT_CONSUMER_GROUP",
    "ESCALATOR_APP_ID",
)


@dataclass(frozen=True)
class LocalStack:
    """The local stack rooted at one state folder (default `.stack` in the project)."""

    root: Path
    kafka_port: int
    controller_port: int
    postgres_port: int
    config_dir: Path

    @classmethod
    def from_env(cls) -> LocalStack:
        """Read folder and ports from the environment (ESCALATION_STACK_DIR, STACK_*_PORT)."""
        env = os.environ
        return cls(
            root=Path(env.get("ESCALATION_STACK_DIR", PROJECT_ROOT / ".stack")).resolve(),
            kafka_port=int(env.get("STACK_KAFKA_PORT", "19092")),
            controller_port=int(env.get("STACK_KAFKA_CONTROLLER_PORT", "19093")),
            postgres_port=int(env.get("STACK_POSTGRES_PORT", str(postgres.DEFAULT_PORT))),
            config_dir=Path(env.get("ESCALATION_CONFIG_DIR", PROJECT_ROOT / "examples" / "config")).resolve(),
        )

    @classmethod
    def of_command(cls, folder: str, kafka_port: int, postgres_port: int) -> LocalStack:
        """A command's own stack (`escalation chaos`, `escalation bench`): `.stack/<folder>`, Kafka on
        `kafka_port` (its controller on the next port) and PostgreSQL on `postgres_port`, unless the
        environment names others (ESCALATION_STACK_DIR, STACK_*_PORT)."""
        os.environ.setdefault("ESCALATION_STACK_DIR", str(PROJECT_ROOT / ".stack" / folder))
        os.environ.setdefault("STACK_KAFKA_PORT", str(kafka_port))
        os.environ.setdefault("STACK_KAFKA_CONTROLLER_PORT", str(kafka_port + 1))
        os.environ.setdefault("STACK_POSTGRES_PORT", str(postgres_port))
        return cls.from_env()

    @property
    def kafka(self) -> kafka.KafkaPaths:
        """Paths and ports of the broker."""
        return kafka.KafkaPaths(
            state_dir=self.root / "kafka", port=self.kafka_port, controller_port=self.controller_port
        )

    @property
    def postgres(self) -> postgres.PostgresPaths:
        """Paths and port of the database."""
        return postgres.PostgresPaths(state_dir=self.root / "postgres", port=self.postgres_port)

    def service_env(self) -> dict[str, str]:
        """The environment the services run with: the public configuration variables."""
        env = dict(os.environ)
        env.setdefault("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{self.kafka_port}")
        env.setdefault("DATABASE_URL", self.postgres.url)
        env.setdefault("ESCALATION_CONFIG_DIR", str(self.config_dir))
        env.setdefault("ESCALATOR_DATA_DIR", str(self.root / "escalator"))
        env.setdefault("AUDIT_SIGNING_KEY", self.signing_key())
        for name in processes.SERVICES:
            env.setdefault(processes.PORT_VARS[name], str(processes.port_of(name, env)))
        return env

    def command_env(self, config: Path, partitions: int) -> dict[str, str]:
        """The workers' environment of a command's own stack (chaos, bench): this broker, database
        and config folder, whatever stack the caller's environment names."""
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.kafka.bootstrap,
            DATABASE_URL=self.postgres.url,
            ESCALATION_CONFIG_DIR=str(config),
            AUDIT_SIGNING_KEY=self.signing_key(),
            TOPIC_PARTITIONS=str(partitions),
        )
        return env

    def signing_key(self) -> str:
        """The local stack's checkpoint signing key, made on first use and kept in its folder."""
        from services.audit.signing import new_private_key_text

        path = self.root / "audit-signing.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_private_key_text() + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    def service(self, name: str) -> processes.ServiceProcess:
        """The process record of one service."""
        return processes.ServiceProcess(name, self.root, processes.port_of(name, self.service_env()))

    def up(
        self, with_services: bool = True, fresh: bool = False, echo: Callable[[str], None] = print
    ) -> dict[str, float]:
        """Start everything not running yet; return how long each part took, in seconds.

        `fresh` first stops everything and deletes the data (not the jar cache).
        """
        timings: dict[str, float] = {}
        t0 = time.monotonic()
        if fresh:
            self.down()
            kafka.reset(self.kafka)
            postgres.reset(self.postgres)
            shutil.rmtree(self.root / "escalator", ignore_errors=True)
        echo("kafka: fetching jars (cached after the first run) ...")
        kafka.ensure_jars(self.kafka)
        timings["kafka jars"] = time.monotonic() - t0
        t1 = time.monotonic()
        kafka.write_config(self.kafka)
        kafka.format_storage(self.kafka)
        kafka.start(self.kafka)
        echo("postgres: starting ...")
        postgres.start(self.postgres)
        timings["postgres"] = time.monotonic() - t1
        kafka.wait_ready(self.kafka)
        timings["kafka"] = time.monotonic() - t1
        echo(f"kafka ready on 127.0.0.1:{self.kafka_port}, postgres on 127.0.0.1:{self.postgres_port}")
        if with_services:
            t2 = time.monotonic()
            env = self.service_env()
            for name in processes.SERVICES:
                processes.start(self.service(name), env)
            for name in processes.SERVICES:
                processes.wait_healthy(self.service(name))
                echo(f"{name}: healthy on port {self.service(name).port}")
            timings["services"] = time.monotonic() - t2
        timings["total"] = time.monotonic() - t0
        return timings

    def down(self) -> dict[str, bool]:
        """Stop services, then PostgreSQL, then Kafka; return what was running."""
        result = {name: processes.stop(self.service(name)) for name in reversed(processes.SERVICES)}
        result["postgres"] = postgres.stop(self.postgres)
        result["kafka"] = kafka.stop(self.kafka)
        return result

    def status(self) -> dict[str, object]:
        """What runs now."""
        out: dict[str, object] = {
            "kafka": kafka.status(self.kafka),
            "postgres": {"pid": postgres.pid(self.postgres), "url": self.postgres.url},
        }
        for name in processes.SERVICES:
            svc = self.service(name)
            out[name] = {"pid": processes.read_pid(svc.pid_file), "port": svc.port, "log": str(svc.log_file)}
        return out
