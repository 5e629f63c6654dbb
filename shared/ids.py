"""Identifiers: time-ordered UUIDv7 for events, deterministic UUIDv5 for derived ids."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

# Namespace for every deterministic id this project derives (step ids, idempotency keys).
PROJECT_NAMESPACE = uuid.UUID("6f1d3c2a-8f4e-5b7a-9c1d-2e3f4a5b6c7d")


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """Return a UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)


def derived_uuid7(unix_ms: int, *parts: object) -> uuid.UUID:
    """Return a UUIDv7 whose random bits come from a hash of `parts`: the same inputs, the same id.

    Lets a consumer that reprocesses a message after a crash re-emit its effects under the same
    event ids, so every downstream deduplication by event_id holds.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    rand = int.from_bytes(digest[:10], "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def uuid7_unix_ms(value: uuid.UUID) -> int:
    """Return the millisecond timestamp carried by a UUIDv7."""
    return value.int >> 80


def derived_id(*parts: object) -> uuid.UUID:
    """Return a deterministic id for the given parts, stable across processes and restarts."""
    return uuid.uuid5(PROJECT_NAMESPACE, "\x1f".join(str(p) for p in parts))


SERVICE_PATTERN = r"^[^/]+$"
"""A service id: anything but '/', which separates it from the dedup key in an incident key."""


def check_service_id(value: str) -> str:
    """A configured service id, refused (ValueError) when it holds '/'."""
    if "/" in value:
        raise ValueError("a service id may not contain '/': it separates the service from the dedup key")
    return value


def incident_key(service: str, dedup_key: str) -> str:
    """Return the Kafka key of an incident: its service and dedup key."""
    return f"{service}/{dedup_key}"
