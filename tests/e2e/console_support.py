"""The four services as processes for the console's browser tests and screenshots: the example config
folder plus access tokens, a fast test policy, and a signing key; Chromium from the system."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.stack import processes
from shared.auth import token_hash
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "config"

# name -> (role, token); test tokens only, configured by their hash like real ones.
TOKENS = {
    "ada-admin": ("admin", "esc_console_test_admin_token"),
    "rita-responder": ("responder", "esc_console_test_responder_token"),
    "audrey-auditor": ("auditor", "esc_console_test_auditor_token"),
}

# Webhook targets named like the directory's teams (the audit log files a step under its targets'
# names), so the notifier needs no directory of its own.
CONSOLE_POLICY = """
services:
  {service}:
    escalation_policy: console-{service}
policies:
  console-{service}:
    name: Console test ladder
    levels:
      - name: frontline
        delay: 0s
        targets: [{{type: webhook, name: frontline, url: "{url}/frontline"}}]
      - name: infrastructure
        delay: {delay}s
        targets: [{{type: webhook, name: infrastructure, url: "{url}/infrastructure"}}]
    sla:
      P1: {{acknowledge: 15m, resolve: 4h}}
      P2: {{acknowledge: 30m, resolve: 8h}}
"""


def token(name: str) -> str:
    """The bearer token of a test user."""
    return TOKENS[name][1]


def chromium() -> str | None:
    """The system's Chromium (Debian's `chromium` package); None when not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_config(folder: Path, service: str, delay: float, url: str, base: list[Path]) -> None:
    """The `base` YAML files, the access tokens and one service whose incidents page `url`/frontline at
    once and `url`/infrastructure after `delay` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in base:
        shutil.copy(path, folder / path.name)
    lines = ["access:"]
    for name, (role, secret) in TOKENS.items():
        lines += [f"  {name}:", f"    role: {role}", f"    token_sha256: {token_hash(secret)}"]
    (folder / "access.yaml").write_text("\n".join(lines) + "\n")
    (folder / "console.yaml").write_text(CONSOLE_POLICY.format(service=service, delay=delay, url=url))


@dataclass
class Services:
    """The running services of one console session."""

    state_dir: Path
    env: dict[str, str]

    def process(self, name: str) -> processes.ServiceProcess:
        """The process record of one service."""
        return processes.ServiceProcess(name, self.state_dir, processes.port_of(name, self.env))

    def url(self, name: str) -> str:
        """Base URL of one service."""
        return f"http://127.0.0.1:{processes.port_of(name, self.env)}"


@contextmanager
def running_services(root: Path, base_env: dict[str, str], config: Path) -> Iterator[Services]:
    """Start intake, escalator, notifier and audit as processes on free ports; stop them at the end."""
    # The stack's key when it has one: checkpoints of one database signed by several keys fail verification.
    key = (
        base_env.get("AUDIT_SIGNING_KEY") or base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    )
    env = dict(base_env)
    env.update(
        ESCALATION_CONFIG_DIR=str(config),
        ESCALATOR_DATA_DIR=str(root / "escalator"),
        AUDIT_SIGNING_KEY=key,
        AUDIT_CHECKPOINT_SECONDS="2",
        LOG_LEVEL="INFO",
    )
    for name in processes.SERVICES:
        env[processes.PORT_VARS[name]] = str(free_port())
    env["CONSOLE_INTAKE_URL"] = f"http://127.0.0.1:{env['INTAKE_PORT']}"
    handle = Services(root, env)
    try:
        for name in processes.SERVICES:
            processes.start(handle.process(name), env)
        for name in processes.SERVICES:
            processes.wait_healthy(handle.process(name), timeout=120)
        yield handle
    finally:
        for name in reversed(processes.SERVICES):
            processes.stop(handle.process(name))
