"""The audit hash chain: canonical rows, their SHA-256 links, and the check that finds the first bad row.

One chain per Kafka source partition ("<topic>/<partition>"): a partition is written by one audit
worker at a time and in offset order, so several workers append to different chains without
coordinating. Row n of a chain carries `chain_seq = n` (from 1), `prev_hash` = the hash of row n-1
(64 zeros for the first row) and

    hash = sha256(prev_hash + canonical(fields without payload and hash) + "\n" + canonical(payload))

Canonical JSON is orjson's: sorted keys, no whitespace, UTF-8, shortest round-trip floats (plain
`json` for what orjson refuses, such as integers beyond 64 bits). The payload is serialized once:
that text is both what PostgreSQL stores and what the hash covers. Instants are ISO 8601 in UTC
(`datetime.isoformat()` of the stored microsecond value). Nothing here does I/O: the store, `verify`
against PostgreSQL and the offline check of an evidence pack all use these functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64

# The fields a row's hash covers, in the order they are documented (the JSON itself sorts keys).
HASHED_FIELDS = (
    "chain",
    "chain_seq",
    "prev_hash",
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "incident_key",
    "incident_id",
    "causation_id",
    "correlation_id",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "service",
    "priority",
    "actor",
    "teams",
)  # and the payload, hashed separately


def chain_of(topic: str, partition: int) -> str:
    """Name of the chain a source partition's rows belong to."""
    return f"{topic}/{partition}"


def timestamp(value: datetime) -> str:
    """The one text form of instants inside hashed rows: ISO 8601 in UTC."""
    return value.astimezone(UTC).isoformat()


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits in a payload
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_hash(row: Mapping[str, Any], payload_text: bytes | None = None) -> str:
    """Hash of one row given its hashed fields (instants as `timestamp` text) and payload.

    `payload_text`, when the caller already has the payload's canonical bytes, saves a second
    serialization; otherwise `row["payload"]` is serialized here.
    """
    body = {name: row[name] for name in HASHED_FIELDS}
    text = payload_text if payload_text is not None else canonical(row["payload"])
    return hashlib.sha256(str(row["prev_hash"]).encode() + canonical(body) + b"\n" + text).hexdigest()


@dataclass(frozen=True)
class Problem:
    """The first row of a chain that does not match, and why."""

    chain: str
    chain_seq: int
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        who = f" (event {self.event_id})" if self.event_id else ""
        return f"chain {self.chain}, row {self.chain_seq}{who}: {self.reason}"


@dataclass
class ChainState:
    """Where one chain stands while its rows are checked in order."""

    seq: int = 0
    hash: str = GENESIS
    hashes: dict[int, str] = field(default_factory=dict)  # kept only for rows a checkpoint names


class ChainChecker:
    """Feed rows chain by chain in `chain_seq` order; remembers the first problem of each chain."""

    def __init__(self, wanted: Mapping[str, set[int]] | None = None) -> None:
        self.chains: dict[str, ChainState] = {}
        self.problems: dict[str, Problem] = {}
        self.rows = 0
        self._wanted = wanted or {}

    def feed(self, row: Mapping[str, Any]) -> None:
        """Check one row against its predecessor in the chain."""
        self.rows += 1
        chain = str(row["chain"])
        if chain in self.problems:
            return
        state = self.chains.setdefault(chain, ChainState())
        seq = int(row["chain_seq"])
        event_id = str(row["event_id"]) if row.get("event_id") else None
        problem = None
        if seq != state.seq + 1:
            missing = "missing or reordered" if seq > state.seq + 1 else "duplicated or reordered"
            problem = f"expected row {state.seq + 1} here, found row {seq} ({missing})"
        elif row["prev_hash"] != state.hash:
            problem = "its prev_hash does not match the hash of the row before it (a row was removed or changed)"
        elif row_hash(row) != row["hash"]:
            problem = "its content does not match its hash (the row was changed)"
        if problem is not None:
            self.problems[chain] = Problem(chain, seq, event_id, problem)
            return
        state.seq, state.hash = seq, str(row["hash"])
        if seq in self._wanted.get(chain, set()):
            state.hashes[seq] = state.hash

    def feed_all(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Feed many rows."""
        for row in rows:
            self.feed(row)

    def hash_at(self, chain: str, seq: int) -> str | None:
        """The verified hash of row `seq` of `chain`, when it was asked for and verified."""
        state = self.chains.get(chain)
        if state is None:
            return None
        return state.hashes.get(seq)
