"""A project-local PostgreSQL from the system's binaries: initdb, start, stop, by pid."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from services.stack.errors import StackError

DEFAULT_PORT = 15432
SUPERUSER = "escalation"
DATABASE = "escalation"
# PostgreSQL refuses to run as root; as root we run it as this system user.
SERVICE_USER = "postgres"


@dataclass(frozen=True)
class PostgresPaths:
    """Where the local PostgreSQL keeps its data, socket and log."""

    state_dir: Path
    port: int = DEFAULT_PORT

    @property
    def data_dir(self) -> Path:
        """The cluster folder (initdb)."""
        return self.state_dir / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder of the Unix socket."""
        return self.state_dir / "run"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.state_dir / "postgres.log"

    @property
    def url(self) -> str:
        """The DSN of the project database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"


def bin_dir() -> Path:
    """Return the folder of the newest installed PostgreSQL server binaries, or raise."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for folder in reversed(candidates):
        if (folder / "initdb").exists():
            return folder
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise StackError("PostgreSQL server binaries not found; install Debian's 'postgresql' package")


def ensure_installed() -> Path:
    """Install Debian's PostgreSQL when missing (as root); return the binaries' folder."""
    try:
        return bin_dir()
    except StackError:
        if os.geteuid() != 0:
            raise
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return bin_dir()


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", SERVICE_USER, "--", *cmd]


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StackError(f"{what} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def _run_logged(paths: PostgresPaths, cmd: list[str], what: str) -> None:
    """Run a server command; on failure add the server log's tail (e.g. 'port already in use')."""
    try:
        _run(cmd, what)
    except StackError as exc:
        try:
            tail = "\n".join(paths.log_file.read_text(errors="replace").splitlines()[-8:])
        except OSError:
            tail = "(no server log)"
        raise StackError(f"{exc}\nlast lines of {paths.log_file}:\n{tail}") from exc


def _own(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        for p in (path, *path.rglob("*")):
            os.chown(p, entry.pw_uid, entry.pw_gid)


def pid(paths: PostgresPaths) -> int | None:
    """Return the postmaster's pid if it runs, else None."""
    pid_file = paths.data_dir / "postmaster.pid"
    try:
        value = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(value, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return value
    return value


def init(paths: PostgresPaths) -> None:
    """initdb once into the project's folder."""
    binaries = ensure_installed()
    _own(paths.state_dir)
    if (paths.data_dir / "PG_VERSION").exists():
        return
    _own(paths.data_dir)
    _run(
        [
            str(binaries / "initdb"),
            "-D",
            str(paths.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        "initdb",
    )


def start(paths: PostgresPaths, timeout: float = 60) -> int:
    """Start the server if not running (idempotent), create the database, return the pid."""
    init(paths)
    running = pid(paths)
    if running is None:
        _own(paths.socket_dir)
        options = (
            f"-p {paths.port} -k {paths.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=256MB -c fsync=on"
        )
        _run_logged(
            paths,
            [
                str(bin_dir() / "pg_ctl"),
                "-D",
                str(paths.data_dir),
                "-l",
                str(paths.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            "pg_ctl start",
        )
    wait_ready(paths, timeout)
    exists = _run(
        [
            str(bin_dir().parent / "bin" / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(paths.port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",  # noqa: S608 - a constant,
        ],
        "psql",
    )
    if exists.strip() != "1":
        _run(
            [str(bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(paths.port), "-U", SUPERUSER, DATABASE],
            "createdb",
        )
    value = pid(paths)
    if value is None:
        raise StackError(f"PostgreSQL did not stay up; see {paths.log_file}")
    return value


def wait_ready(paths: PostgresPaths, timeout: float = 60) -> None:
    """Wait until the server accepts connections on its port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [str(bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(paths.port), "-U", SUPERUSER],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            return
        time.sleep(0.2)
    raise StackError(f"PostgreSQL not ready after {timeout}s; see {paths.log_file}")


def stop(paths: PostgresPaths, timeout: float = 60) -> bool:
    """Stop the server (fast shutdown); return whether it was running."""
    if pid(paths) is None:
        return False
    _run(
        [str(bin_dir() / "pg_ctl"), "-D", str(paths.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
        "pg_ctl stop",
    )
    return True


def reset(paths: PostgresPaths) -> None:
    """Delete the cluster (it must be stopped)."""
    if pid(paths) is not None:
        raise StackError("stop PostgreSQL before resetting it")
    shutil.rmtree(paths.data_dir, ignore_errors=True)
