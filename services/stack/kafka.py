"""A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) for the local stack.

Kafka's jars come from Maven Central through `deploy/local/kafka/pom.xml` (resolved once, cached
in `<state>/libs`) and run with the machine's Java 17; no Docker, no tarball, no ZooKeeper.
Standard library only, so `escalation stack` works before anything else is importable.

    paths = KafkaPaths()                 # <repo>/.stack/kafka, 127.0.0.1:19092 (+ 19093)
    ensure_jars(paths); write_config(paths); format_storage(paths)
    start(paths); wait_ready(paths)      # ... stop(paths); reset(paths)
"""

from __future__ import annotations

import base64
import fcntl
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

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
HOST = "127.0.0.1"
NODE_ID = 1

SERVER_MAIN = "kafka.Kafka"
"""The broker's main class (kafka_2.13), run as `kafka.Kafka server.properties`."""
STORAGE_MAIN = "kafka.tools.StorageTool"
"""The storage tool's main class (kafka_2.13), what `kafka-storage.sh format` runs."""

HEAP = ("-Xms256m", "-Xmx1g")
# What Kafka's kafka-run-class.sh passes by default (KAFKA_JVM_PERFORMANCE_OPTS).
JVM_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
MVN_TIMEOUT = 900.0
OUTPUT_TAIL = 3000


@dataclass(frozen=True)
class KafkaPaths:
    """Where the local broker keeps its jars, data, config, log and pid, and its two ports.

    Everything lives under `state_dir`; `reset` deletes `data_dir` only (the jars stay).
    """

    state_dir: Path = PROJECT_ROOT / ".stack" / "kafka"
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    project_root: Path = PROJECT_ROOT

    @classmethod
    def for_project(
        cls,
        project_root: Path,
        port: int = DEFAULT_PORT,
        controller_port: int = DEFAULT_CONTROLLER_PORT,
    ) -> KafkaPaths:
        """The default layout of another checkout: `<project_root>/.stack/kafka`."""
        return cls(
            state_dir=project_root / ".stack" / "kafka",
            port=port,
            controller_port=controller_port,
            project_root=project_root,
        )

    @property
    def deploy_dir(self) -> Path:
        """`deploy/local/kafka`: the pom and the log4j2 configuration."""
        return self.project_root / "deploy" / "local" / "kafka"

    @property
    def pom_file(self) -> Path:
        """The Maven project whose runtime dependencies are the broker's classpath."""
        return self.deploy_dir / "pom.xml"

    @property
    def log4j_config(self) -> Path:
        """The broker's log4j2 configuration."""
        return self.deploy_dir / "log4j2.yaml"

    @property
    def libs_dir(self) -> Path:
        """Kafka's jars, the cache between runs (kept by `reset`)."""
        return self.state_dir / "libs"

    @property
    def jars_stamp(self) -> Path:
        """SHA-256 of the pom the jars in `libs_dir` were resolved from."""
        return self.libs_dir / ".pom-sha256"

    @property
    def data_dir(self) -> Path:
        """Everything `reset` deletes: Kafka's log.dirs and the broker's log file."""
        return self.state_dir / "data"

    @property
    def kafka_log_dir(self) -> Path:
        """Kafka's `log.dirs`: the partitions and the KRaft metadata log (meta.properties)."""
        return self.data_dir / "kraft"

    @property
    def log_file(self) -> Path:
        """The broker's log (log4j2 and the JVM's own stdout/stderr)."""
        return self.data_dir / "kafka.log"

    @property
    def config_file(self) -> Path:
        """server.properties, rewritten by `write_config`."""
        return self.state_dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        """The broker JVM's pid."""
        return self.state_dir / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        """The clients' bootstrap servers."""
        return f"{HOST}:{self.port}"


# --- jars -------------------------------------------------------------------------------------


def _pom_digest(paths: KafkaPaths) -> str:
    try:
        return hashlib.sha256(paths.pom_file.read_bytes()).hexdigest()
    except OSError as exc:
        raise StackError(f"cannot read Kafka's pom {paths.pom_file}: {exc}") from exc


def jars_cached(paths: KafkaPaths) -> bool:
    """Whether `libs_dir` holds the jars of the current pom."""
    try:
        stamp = paths.jars_stamp.read_text().strip()
    except OSError:
        return False
    return stamp == _pom_digest(paths) and any(paths.libs_dir.glob("kafka_2.13-*.jar"))


def ensure_jars(paths: KafkaPaths) -> None:
    """Resolve Kafka's jars with Maven into `libs_dir`, unless they are there for this pom.

    Maven's own repository (~/.m2) caches the downloads; `libs_dir` is replaced atomically, so
    an interrupted run leaves either the old jars or none, never a half set.
    """
    if jars_cached(paths):
        return
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    with (paths.state_dir / ".libs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be resolving the same jars
        if jars_cached(paths):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("Maven (mvn) not found; install it (Debian: apt-get install maven)")
        digest = _pom_digest(paths)
        staging = paths.state_dir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(paths.pom_file),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                check=False,
                timeout=MVN_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"mvn did not finish in {MVN_TIMEOUT:.0f}s: {' '.join(cmd)}") from exc
        output = (proc.stdout or "") + (proc.stderr or "")
        if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            command = " ".join(cmd)
            message = f"fetching Kafka's jars failed (mvn exit {proc.returncode}): {command}"
            raise StackError(f"{message}\n{output[-OUTPUT_TAIL:]}")
        (staging / paths.jars_stamp.name).write_text(digest + "\n")
        old = paths.state_dir / "libs.old"
        shutil.rmtree(old, ignore_errors=True)
        if paths.libs_dir.exists():
            paths.libs_dir.rename(old)
        staging.rename(paths.libs_dir)
        shutil.rmtree(old, ignore_errors=True)


def kafka_version(paths: KafkaPaths) -> str | None:
    """The Kafka version in `libs_dir` (from the kafka_2.13 jar's name), if resolved."""
    for jar in paths.libs_dir.glob("kafka_2.13-*.jar"):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return None


# --- config and storage -----------------------------------------------------------------------


def server_properties(paths: KafkaPaths) -> dict[str, str]:
    """The broker's configuration: combined broker and controller, one node, on 127.0.0.1."""
    broker = f"PLAINTEXT://{HOST}:{paths.port}"
    controller = f"CONTROLLER://{HOST}:{paths.controller_port}"
    return {
        # KRaft, one node that is both broker and controller (static quorum of one voter)
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{paths.controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"{broker},{controller}",
        "advertised.listeners": broker,
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(paths.kafka_log_dir),
        # topics: Faust and the services create their own, so auto-creation stays on (default)
        "auto.create.topics.enable": "true",
        "num.partitions": "8",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # internal topics on one node: replication factor 1, fewer partitions than the default 50
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # a lone consumer joins its group at once instead of after 3 s
        "group.initial.rebalance.delay.ms": "0",
        # retention for a developer machine: a week, at most 1 GiB per partition
        "log.retention.hours": "168",
        "log.retention.bytes": str(1024**3),
        "log.segment.bytes": str(64 * 1024**2),
        "log.retention.check.interval.ms": "300000",
        "log.cleaner.dedupe.buffer.size": str(32 * 1024**2),
        # threads for a small machine
        "num.network.threads": "2",
        "num.io.threads": "4",
    }


def write_config(paths: KafkaPaths) -> Path:
    """Write `server.properties` (and create the folders); return its path."""
    paths.kafka_log_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{key}={value}\n" for key, value in server_properties(paths).items())
    paths.config_file.write_text("# written by services/stack/kafka.py; edits are lost\n" + text)
    return paths.config_file


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):  # Kafka's Uuid.randomUuid avoids these too
            return value


def format_storage(paths: KafkaPaths) -> None:
    """Format the KRaft storage with a new cluster id, once (skipped if meta.properties exists)."""
    if (paths.kafka_log_dir / "meta.properties").exists():
        return
    if not paths.config_file.exists():
        write_config(paths)
    cmd = _java_cmd(
        paths,
        ("-Xms64m", "-Xmx256m", "-XX:TieredStopAtLevel=1"),
        STORAGE_MAIN,
        "format",
        "--cluster-id",
        new_cluster_id(),
        "--config",
        str(paths.config_file),
        "--ignore-formatted",
    )
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 or not (paths.kafka_log_dir / "meta.properties").exists():
        output = (proc.stdout or "") + (proc.stderr or "")
        raise StackError(
            f"formatting Kafka's storage failed (exit {proc.returncode}):\n"
            f"{output[-OUTPUT_TAIL:]}\n{tail(paths.log_file)}"
        )


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("Java not found; install Java 17+ (Debian: openjdk-17-jre-headless)")
    return found


def _java_cmd(paths: KafkaPaths, heap: tuple[str, ...], main: str, *args: str) -> list[str]:
    if not jars_cached(paths):
        raise StackError(f"Kafka's jars are not in {paths.libs_dir}; run ensure_jars first")
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    return [
        _java(),
        *heap,
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={paths.log4j_config}",
        f"-Dkafka.logs.file={paths.log_file}",
        f"-Dkafka.logs.dir={paths.data_dir}",
        "-cp",
        f"{paths.libs_dir}/*",
        main,
        *args,
    ]


# --- process ----------------------------------------------------------------------------------


def _live_tasks(value: int) -> list[Path]:
    """The threads of process `value` that have not exited (`/proc/<pid>/task/<tid>`).

    A JVM's main thread can exit (and show as a zombie) while its other threads still run and
    hold the ports, so the process counts as running while any of its threads does.
    """
    try:
        os.waitpid(value, os.WNOHANG)  # reap it if it is our own exited child
    except ChildProcessError:
        pass
    live = []
    try:
        tasks = list(Path(f"/proc/{value}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] not in {"Z", "X"}:
            live.append(task)
    return live


def _alive(value: int) -> bool:
    """Whether any thread of process `value` still runs."""
    return bool(_live_tasks(value))


def pid(paths: KafkaPaths) -> int | None:
    """The pid of this stack's broker if it runs: a live java running kafka.Kafka on our config."""
    try:
        value = int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    for task in _live_tasks(value):
        try:
            argv = (task / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0]:
            ours = (
                Path(os.fsdecode(argv[0])).name == "java"
                and SERVER_MAIN.encode() in argv
                and os.fsencode(paths.config_file) in argv
            )
            return value if ours else None
    return None


def start(paths: KafkaPaths) -> int:
    """Start the broker detached unless it runs already; return its pid (not waiting for it).

    The JVM runs in its own session, is no child of this process (a short-lived `sh` forks it,
    so nothing here has to reap it) and writes stdout and stderr to `log_file`.
    """
    running = pid(paths)
    if running is not None:
        return running
    if not paths.config_file.exists():
        write_config(paths)
    if not (paths.kafka_log_dir / "meta.properties").exists():
        raise StackError(f"Kafka's storage in {paths.kafka_log_dir} is not formatted")
    cmd = _java_cmd(paths, HEAP, SERVER_MAIN, str(paths.config_file))
    launcher = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
    proc = subprocess.run(
        ["/bin/sh", "-c", launcher, "sh", str(paths.log_file), *cmd],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        value = int(proc.stdout.strip())
    except ValueError as exc:
        raise StackError(f"starting Kafka failed: {proc.stdout}{proc.stderr}") from exc
    paths.pid_file.write_text(f"{value}\n")
    return value


# --- readiness --------------------------------------------------------------------------------

_API_VERSIONS = 18
_METADATA = 3
_CLIENT_ID = b"escalation-stack"


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    """Send one request (header v1) and return the response after its correlation id."""
    header = struct.pack(">hhih", api_key, version, api_key, len(_CLIENT_ID)) + _CLIENT_ID
    sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
    (size,) = struct.unpack(">i", _recv(sock, 4))
    reply = _recv(sock, size)
    (correlation,) = struct.unpack(">i", reply[:4])
    if correlation != api_key:
        raise OSError(f"unexpected correlation id {correlation}")
    return reply[4:]


def _recv(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed by the broker")
        data += chunk
    return bytes(data)


def api_versions(port: int, host: str = HOST, timeout: float = 2.0) -> dict[int, tuple[int, int]]:
    """Ask a broker for its ApiVersions (request v0); return {api key: (min, max version)}.

    Raises OSError if nothing answers, or the answer is not a good ApiVersions response.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        reply = _request(sock, _API_VERSIONS, 0, b"")
    error, count = struct.unpack(">hi", reply[:6])
    if error != 0 or count <= 0:
        raise OSError(f"ApiVersions error code {error}")
    entries = struct.iter_unpack(">hhh", reply[6 : 6 + 6 * count])
    return {key: (low, high) for key, low, high in entries}


def _broker_registered(port: int, host: str = HOST, timeout: float = 2.0) -> bool:
    """Whether a Metadata v4 response (no topics) lists a broker: so it is unfenced."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        reply = _request(sock, _METADATA, 4, struct.pack(">i?", 0, False))
    _throttle, brokers = struct.unpack(">ii", reply[:8])
    return bool(brokers > 0)


def is_ready(paths: KafkaPaths) -> bool:
    """Whether the broker answers ApiVersions and lists itself in Metadata (so takes clients)."""
    try:
        versions = api_versions(paths.port)
        low, high = versions.get(_METADATA, (0, -1))
        if not low <= 4 <= high:  # a future broker without Metadata v4: ApiVersions must do
            return True
        return _broker_registered(paths.port)
    except (OSError, struct.error):
        return False


def wait_ready(paths: KafkaPaths, timeout: float = 90) -> None:
    """Wait until the broker answers Kafka requests; raise StackError if it died or took too long.

    Readiness is an ApiVersions v0 answer (a Kafka protocol round trip, not a TCP connect) and a
    Metadata answer that lists the broker (registered with the controller and unfenced).
    """
    deadline = time.monotonic() + timeout
    while True:
        if pid(paths) is None:
            raise StackError(f"Kafka is not running; last log lines:\n{tail(paths.log_file)}")
        if is_ready(paths):
            return
        if time.monotonic() >= deadline:
            message = f"Kafka not ready on {paths.bootstrap} after {timeout:.0f}s"
            raise StackError(f"{message}; last log lines:\n{tail(paths.log_file)}")
        time.sleep(0.2)


# --- stop, status, reset ----------------------------------------------------------------------


def stop(paths: KafkaPaths, timeout: float = 30) -> bool:
    """SIGTERM the broker (a controlled shutdown), SIGKILL it after `timeout` seconds.

    Removes the pid file; returns whether a broker was running.
    """
    value = pid(paths)
    if value is None:
        paths.pid_file.unlink(missing_ok=True)
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(value, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _alive(value) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _alive(value):
            break
    else:
        raise StackError(f"Kafka (pid {value}) survived SIGKILL")
    paths.pid_file.unlink(missing_ok=True)
    return True


def status(paths: KafkaPaths) -> dict[str, object]:
    """What runs, and where."""
    running = pid(paths)
    return {
        "pid": running,
        "running": running is not None,
        "ready": running is not None and is_ready(paths),
        "bootstrap": paths.bootstrap,
        "controller": f"{HOST}:{paths.controller_port}",
        "version": kafka_version(paths),
        "jars_cached": jars_cached(paths),
        "formatted": (paths.kafka_log_dir / "meta.properties").exists(),
        "state_dir": str(paths.state_dir),
        "log": str(paths.log_file),
    }


def reset(paths: KafkaPaths) -> None:
    """Delete the broker's data and log (not the jars); the broker must be stopped."""
    if pid(paths) is not None:
        raise StackError("stop Kafka before resetting it")
    shutil.rmtree(paths.data_dir, ignore_errors=True)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
