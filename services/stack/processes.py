"""The four services as detached processes of the local stack, tracked by pid files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.stack.errors import StackError

SERVICES = ("audit", "escalator", "notifier", "intake")
PORT_VARS = {
    "intake": "INTAKE_PORT",
    "escalator": "ESCALATOR_PORT",
    "notifier": "NOTIFIER_PORT",
    "audit": "AUDIT_PORT",
}
DEFAULT_PORTS = {"intake": 8081, "escalator": 8082, "notifier": 8083, "audit": 8084}


@dataclass(frozen=True)
class ServiceProcess:
    """Where one service's pid and log live, and its port."""

    name: str
    state_dir: Path
    port: int
    instance: int = 1
    """Which worker of the service (1, 2, ...): several run side by side in one consumer group."""

    @property
    def label(self) -> str:
        """`name` for the first worker, `name-N` for the N-th (its pid and log file names)."""
        return self.name if self.instance == 1 else f"{self.name}-{self.instance}"

    @property
    def pid_file(self) -> Path:
        """The pid file."""
        return self.state_dir / "pids" / f"{self.label}.pid"

    @property
    def log_file(self) -> Path:
        """The JSON log of the process."""
        return self.state_dir / "logs" / f"{self.label}.log"

    @property
    def health_url(self) -> str:
        """The /healthz URL."""
        return f"http://127.0.0.1:{self.port}/healthz"


def port_of(name: str, env: dict[str, str]) -> int:
    """Return the configured port of a service."""
    return int(env.get(PORT_VARS[name], DEFAULT_PORTS[name]))


def worker_env(env: dict[str, str], proc: ServiceProcess) -> dict[str, str]:
    """The environment of one worker: its own port and, for the escalator, its own state folder."""
    out = dict(env)
    out[PORT_VARS[proc.name]] = str(proc.port)
    if proc.name == "escalator":
        out["ESCALATOR_DATA_DIR"] = str(proc.state_dir / proc.label)
    return out


def alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def read_pid(pid_file: Path) -> int | None:
    """Return the pid recorded in a pid file if that process is alive."""
    try:
        value = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return value if alive(value) else None


def start(proc: ServiceProcess, env: dict[str, str]) -> int:
    """Start the service unless its pid file names a live process; return the pid."""
    running = read_pid(proc.pid_file)
    if running is not None:
        return running
    proc.pid_file.parent.mkdir(parents=True, exist_ok=True)
    proc.log_file.parent.mkdir(parents=True, exist_ok=True)
    with proc.log_file.open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "services.cli", proc.name],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    proc.pid_file.write_text(str(child.pid))
    return child.pid


def wait_healthy(proc: ServiceProcess, timeout: float = 90) -> None:
    """Wait for /healthz to answer 200; raise with the log's tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read_pid(proc.pid_file)
        if pid is None:
            raise StackError(f"{proc.label} exited; last log lines:\n{tail(proc.log_file)}")
        try:
            with urllib.request.urlopen(proc.health_url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise StackError(f"{proc.label} not healthy after {timeout}s; last log lines:\n{tail(proc.log_file)}")


def stop_pid(pid: int, timeout: float = 30) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def kill_hard(pid: int, timeout: float = 10) -> None:
    """SIGKILL a process (a crash, for fault tests) and return once it is gone (reaped if ours)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child: wait until the kernel has let it go
            if not alive(pid):
                return
        time.sleep(0.01)
    raise StackError(f"process {pid} survived SIGKILL for {timeout}s")


def stop(proc: ServiceProcess, timeout: float = 30) -> bool:
    """Stop the service by pid; return whether it was running."""
    pid = read_pid(proc.pid_file)
    proc.pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    stop_pid(pid, timeout)
    return True


def tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
