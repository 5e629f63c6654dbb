"""From a consumed message to the stored, chained row: the fields auditors search by, then the links."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.audit.chain import canonical, chain_of, row_hash, timestamp
from shared.envelope import Envelope

# Columns of audit_log the writer fills (seq comes from its sequence), in COPY order.
COLUMNS = (
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
    "payload",
    "chain",
    "chain_seq",
    "prev_hash",
    "hash",
    "service",
    "priority",
    "actor",
    "teams",
)


@dataclass(frozen=True)
class Record:
    """One consumed message with where it came from."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope


def service_of(incident_key: str) -> str:
    """The service part of an incident key (`service/dedup`)."""
    return incident_key.split("/", 1)[0]


def teams_of(payload: Mapping[str, Any]) -> list[str]:
    """Teams a message concerns: named targets of a step or delivery, a reassignment's team."""
    teams: set[str] = set()
    targets = payload.get("targets")
    one = payload.get("target")
    for target in [*(targets if isinstance(targets, list) else []), *([one] if isinstance(one, dict) else [])]:
        if isinstance(target, dict):
            label = target.get("name") or (target.get("id") if target.get("type") in ("team", "schedule") else None)
            if isinstance(label, str):
                teams.add(label)
    team = payload.get("team")
    if isinstance(team, str):
        teams.add(team)
    return sorted(teams)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def hashed_fields(record: Record, recorded_at: datetime) -> dict[str, Any]:
    """The row's fields in their hashed form (text instants and ids), without the chain links."""
    env = record.envelope
    payload = env.payload
    return {
        "event_id": str(env.event_id),
        "type": env.type,
        "schema_version": env.schema_version,
        "occurred_at": timestamp(env.occurred_at),
        "recorded_at": timestamp(recorded_at),
        "incident_key": env.incident_key,
        "incident_id": str(env.incident_id) if env.incident_id else None,
        "causation_id": str(env.causation_id) if env.causation_id else None,
        "correlation_id": str(env.correlation_id) if env.correlation_id else None,
        "topic": record.topic,
        "kafka_partition": record.partition,
        "kafka_offset": record.offset,
        "service": service_of(env.incident_key),
        "priority": _text(payload.get("priority")),
        "actor": _text(payload.get("actor")),
        "teams": teams_of(payload),
        "payload": payload,
    }


def link(records: Iterable[Record], heads: dict[str, tuple[int, str]], recorded_at: datetime) -> list[tuple[Any, ...]]:
    """Chain the records (in order) after `heads`, advancing them; return rows in COPY column order."""
    out: list[tuple[Any, ...]] = []
    for record in records:
        env = record.envelope
        chain = chain_of(record.topic, record.partition)
        seq, prev = heads.get(chain, (0, "0" * 64))
        row = hashed_fields(record, recorded_at)
        row.update(chain=chain, chain_seq=seq + 1, prev_hash=prev)
        payload_text = canonical(env.payload)
        digest = row_hash(row, payload_text)
        heads[chain] = (seq + 1, digest)
        out.append(
            (
                env.event_id,
                env.type,
                env.schema_version,
                env.occurred_at,
                recorded_at,
                env.incident_key,
                env.incident_id,
                env.causation_id,
                env.correlation_id,
                record.topic,
                record.partition,
                record.offset,
                payload_text.decode(),
                chain,
                seq + 1,
                prev,
                digest,
                row["service"],
                row["priority"],
                row["actor"],
                row["teams"],
            )
        )
    return out


def stored_to_hashed(r: Mapping[str, Any]) -> dict[str, Any]:
    """A row read from PostgreSQL in its hashed form (what `chain.row_hash` takes), plus its hash."""
    payload = r["payload"]
    return {
        "chain": r["chain"],
        "chain_seq": r["chain_seq"],
        "prev_hash": r["prev_hash"],
        "hash": r["hash"],
        "event_id": str(r["event_id"]),
        "type": r["type"],
        "schema_version": r["schema_version"],
        "occurred_at": timestamp(r["occurred_at"]),
        "recorded_at": timestamp(r["recorded_at"]),
        "incident_key": r["incident_key"],
        "incident_id": str(r["incident_id"]) if r["incident_id"] else None,
        "causation_id": str(r["causation_id"]) if r["causation_id"] else None,
        "correlation_id": str(r["correlation_id"]) if r["correlation_id"] else None,
        "topic": r["topic"],
        "kafka_partition": r["kafka_partition"],
        "kafka_offset": r["kafka_offset"],
        "service": r["service"],
        "priority": r["priority"],
        "actor": r["actor"],
        "teams": list(r["teams"] or []),
        "payload": json.loads(payload) if isinstance(payload, str) else payload,
    }
