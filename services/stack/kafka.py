"""A single-node Apache Kafka (KRaft) from Apache's jars on Maven Central, run with the machine's Java."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.stack.errors import StackError

KAFKA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka"
SERVER_MAIN = "kafka.Kafka"
STORAGE_MAIN = "kafka.tools.StorageTool"


@dataclass(frozen=True)
class KafkaPaths:
    """Where the local broker keeps its jars, data, config, log and pid, and its ports."""

    state_dir: Path
    port: int = 19092
    controller_port: int = 19093
    cache_dir: Path | None = None

    @property
    def libs_dir(self) -> Path:
        """Kafka's jars (shared by every stack folder of the project, so fetched once)."""
        return (self.cache_dir or self.state_dir.parent / "cache") / "kafka-libs"

    @property
    def data_dir(self) -> Path:
        """The KRaft log folder."""
        return self.state_dir / "data"

    @property
    def config_file(self) -> Path:
        """server.properties."""
        return self.state_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        """The broker's log."""
        return self.state_dir / "kafka.log"

    @property
    def pid_file(self) -> Path:
        """The broker's pid."""
        return self.state_dir / "kafka.pid"


def _pom_digest() -> str:
    return hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()


def ensure_jars(paths: KafkaPaths) -> None:
    """Resolve Kafka's jars with Maven unless the cache already holds them for this pom."""
    stamp = paths.libs_dir / ".pom-sha256"
    if stamp.exists() and stamp.read_text() == _pom_digest():
        return
    if shutil.which("mvn") is None:
        raise StackError("Maven (mvn) not found; install Debian's 'maven' package")
    staging = paths.libs_dir.with_name(paths.libs_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    proc = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(KAFKA_DIR / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"fetching Kafka's jars failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    shutil.rmtree(paths.libs_dir, ignore_errors=True)
    staging.rename(paths.libs_dir)
    stamp.write_text(_pom_digest())


def write_config(paths: KafkaPaths) -> Path:
    """Write server.properties: combined broker and controller on 127.0.0.1."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{paths.controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{paths.port},CONTROLLER://127.0.0.1:{paths.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{paths.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(paths.data_dir),
        "num.partitions": "8",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "auto.create.topics.enable": "true",
    }
    paths.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return paths.config_file


def _java(paths: KafkaPaths, main: str, *args: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise StackError("Java not found; install Debian's 'openjdk-17-jre-headless' package")
    return [
        java,
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.yaml'}",
        f"-Dkafka.logs.file={paths.log_file}",
        "-cp",
        f"{paths.libs_dir}/*",
        main,
        *args,
    ]


def format_storage(paths: KafkaPaths) -> None:
    """Format the KRaft storage once, with a fresh cluster id (skipped when already formatted)."""
    if (paths.data_dir / "meta.properties").exists():
        return
    cluster_id = _cluster_id()
    proc = subprocess.run(
        _java(paths, STORAGE_MAIN, "format", "-t", cluster_id, "-c", str(paths.config_file)),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


def _cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def pid(paths: KafkaPaths) -> int | None:
    """Return the broker's pid if it runs."""
    try:
        value = int(paths.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return value if SERVER_MAIN.encode() in cmdline else None


def start(paths: KafkaPaths) -> int:
    """Start the broker detached unless it runs already; return its pid."""
    running = pid(paths)
    if running is not None:
        return running
    with paths.log_file.open("ab") as log:
        child = subprocess.Popen(
            _java(paths, SERVER_MAIN, str(paths.config_file)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pid_file.write_text(str(child.pid))
    return child.pid


def _api_versions_ok(port: int) -> bool:
    """Send an ApiVersions v0 request and check the broker answers with error code 0."""
    client_id = b"escalation-stack"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            size = struct.unpack(">i", _recv(sock, 4))[0]
            reply = _recv(sock, size)
    except OSError:
        return False
    correlation, error = struct.unpack(">ih", reply[:6])
    return bool(correlation == 1 and error == 0)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def wait_ready(paths: KafkaPaths, timeout: float = 90) -> None:
    """Wait until the broker answers Kafka requests; raise with the log's tail if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid(paths) is None:
            raise StackError(f"Kafka exited; last log lines:\n{_tail(paths.log_file)}")
        if _api_versions_ok(paths.port):
            return
        time.sleep(0.2)
    raise StackError(f"Kafka not ready after {timeout}s; last log lines:\n{_tail(paths.log_file)}")


def stop(paths: KafkaPaths, timeout: float = 60) -> bool:
    """SIGTERM the broker (controlled shutdown), SIGKILL after `timeout`; return whether it ran."""
    value = pid(paths)
    if value is None:
        paths.pid_file.unlink(missing_ok=True)
        return False
    os.kill(value, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{value}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{value}").exists():
        os.kill(value, signal.SIGKILL)
    paths.pid_file.unlink(missing_ok=True)
    return True


def status(paths: KafkaPaths) -> dict[str, object]:
    """What runs, and where."""
    return {"pid": pid(paths), "bootstrap": f"127.0.0.1:{paths.port}", "log": str(paths.log_file)}


def reset(paths: KafkaPaths) -> None:
    """Delete the broker's data (not the jar cache); it must be stopped."""
    if pid(paths) is not None:
        raise StackError("stop Kafka before resetting it")
    shutil.rmtree(paths.data_dir, ignore_errors=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
