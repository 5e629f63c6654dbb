"""Each benchmark's own fresh local stack (real Kafka and PostgreSQL), on ports of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from services.stack.local import LocalStack

ROOT = Path(__file__).resolve().parents[1]


def fresh_stack(name: str, kafka_port: int, postgres_port: int) -> tuple[LocalStack, str]:
    """Start `.stack/<name>` from scratch; return it and Kafka's bootstrap address.

    The environment may override folder and ports (ESCALATION_STACK_DIR, STACK_*_PORT). The default
    ports lie below Linux's ephemeral range (32768-60999), so no client's outgoing port takes them first.
    """
    os.environ.setdefault("ESCALATION_STACK_DIR", str(ROOT / ".stack" / name))
    os.environ.setdefault("STACK_KAFKA_PORT", str(kafka_port))
    os.environ.setdefault("STACK_KAFKA_CONTROLLER_PORT", str(kafka_port + 1))
    os.environ.setdefault("STACK_POSTGRES_PORT", str(postgres_port))
    stack = LocalStack.from_env()
    stack.up(with_services=False, fresh=True, echo=lambda text: print(text, file=sys.stderr, flush=True))
    return stack, f"127.0.0.1:{stack.kafka_port}"
