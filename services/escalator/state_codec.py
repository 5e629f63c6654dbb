"""How incident state is stored in the Faust table: compact JSON bytes, policy snapshots stored once.

Every incident frozen under the same policy shares one snapshot; storing it inline would multiply
it by the number of open incidents. A snapshot is written once per partition under its hash (the
table's changelog is partitioned like the commands, so a partition that moves to another worker
takes its snapshots along), and incidents keep only the hash.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from services.escalator.core.heartbeat import HeartbeatState
from services.escalator.core.policy import Snapshot
from services.escalator.core.state import IncidentState

SNAPSHOT_PREFIX = "\x1fsnapshot\x1f"  # no incident key (service/dedup key) starts with a control character


def _record(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    # Values normally come back as the bytes written; a store that decoded them hands a dict.
    record: dict[str, Any] = dict(raw) if isinstance(raw, dict) else json.loads(raw)
    if isinstance(raw, dict):
        record["s"] = dict(record["s"])
    return record


@dataclass(frozen=True)
class StoredIncident:
    """A decoded table entry: the state and where its last command came from."""

    partition: int
    offset: int
    state: IncidentState


def snapshot_key(partition: int, digest: str) -> str:
    """Table key of one snapshot in one partition."""
    return f"{SNAPSHOT_PREFIX}{partition}\x1f{digest}"


def is_snapshot_key(key: str) -> bool:
    """True for snapshot entries (not incidents)."""
    return key.startswith(SNAPSHOT_PREFIX)


def parse_snapshot_key(key: str) -> tuple[int, str]:
    """(partition, digest) of a snapshot key."""
    partition, digest = key[len(SNAPSHOT_PREFIX) :].split("\x1f", 1)
    return int(partition), digest


class StateCodec:
    """Encodes and decodes table values, caching parsed snapshots by hash."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}

    def encode(self, partition: int, offset: int, state: IncidentState) -> bytes:
        """The table value of one incident, without its snapshot."""
        body = state.model_dump(mode="json", exclude={"snapshot"})
        return json.dumps({"p": partition, "o": offset, "s": body}, separators=(",", ":")).encode()

    def encode_snapshot(self, snapshot: Snapshot) -> bytes:
        """The table value of one snapshot."""
        self._snapshots.setdefault(snapshot.digest(), snapshot)
        return snapshot.model_dump_json(by_alias=True).encode()

    def remember(self, raw: bytes | dict[str, Any]) -> str:
        """Parse and cache a stored snapshot; return its hash."""
        snapshot = Snapshot.model_validate(raw) if isinstance(raw, dict) else Snapshot.model_validate_json(raw)
        digest = snapshot.digest()
        self._snapshots.setdefault(digest, snapshot)
        return digest

    def knows(self, digest: str) -> bool:
        """True when the snapshot of this hash is cached."""
        return digest in self._snapshots

    @staticmethod
    def encode_heartbeat(partition: int, offset: int, state: HeartbeatState) -> bytes:
        """The table value of one heartbeat monitor (same header as an incident's: `p`, `o`, `s.timer`)."""
        body = state.model_dump(mode="json")
        return json.dumps({"p": partition, "o": offset, "k": "heartbeat", "s": body}, separators=(",", ":")).encode()

    @staticmethod
    def is_heartbeat(raw: bytes | dict[str, Any]) -> bool:
        """True when the table value is a heartbeat monitor, not an incident."""
        return _record(raw).get("k") == "heartbeat"

    @staticmethod
    def decode_heartbeat(raw: bytes | dict[str, Any]) -> tuple[int, int, HeartbeatState]:
        """(partition, offset, state) of a heartbeat monitor's table value."""
        record = _record(raw)
        return record["p"], record["o"], HeartbeatState.model_validate(record["s"])

    def decode(self, raw: bytes | dict[str, Any]) -> StoredIncident:
        """The incident of a table value, with its snapshot re-attached (it must be cached)."""
        record = _record(raw)
        body = record["s"]
        digest = body.get("snapshot_hash")
        body["snapshot"] = self._snapshots[digest] if digest is not None else None
        return StoredIncident(record["p"], record["o"], IncidentState.model_validate(body))

    @staticmethod
    def incident_id(raw: bytes | dict[str, Any]) -> uuid.UUID | None:
        """The incident id of a table value (None for a heartbeat monitor)."""
        value = _record(raw)["s"].get("incident_id")
        return uuid.UUID(str(value)) if value is not None else None

    @staticmethod
    def header(raw: bytes | dict[str, Any]) -> tuple[int, int, str | None, dict[str, object] | None]:
        """(partition, offset, snapshot hash, timer) without building the state: for fast rebuilds."""
        record = _record(raw)
        body = record["s"]
        return record["p"], record["o"], body.get("snapshot_hash"), body.get("timer")
