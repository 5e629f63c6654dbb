"""From a consumed message to the stored, chained row: the fields auditors search by, then the links."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.audit.chain import GENESIS, canonical, row_hash, timestamp
from shared.envelope import Envelope

_ZERO = timedelta(0)

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


def _label(target: object) -> str | None:
    if type(target) is not dict:
        return None
    label = target.get("name") or (target.get("id") if target.get("type") in ("team", "schedule") else None)
    return label if type(label) is str else None


def teams_of(payload: Mapping[str, Any]) -> list[str]:
    """Teams a message concerns: named targets of a step or delivery, a reassignment's team."""
    targets, one, team = payload.get("targets"), payload.get("target"), payload.get("team")
    if targets is None and one is None and team is None:
        return []
    labels = [_label(t) for t in targets] if type(targets) is list else []
    labels.append(_label(one))
    labels.append(team if type(team) is str else None)
    return sorted({label for label in labels if label is not None})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def pg_text(value: str) -> str:
    """`value` as a PostgreSQL text column can hold it: NUL (which JSON allows and PostgreSQL text
    refuses) becomes U+FFFD. One unstorable character must never stop the audit; the payload column
    keeps the exact JSON, where NUL is written as an escape."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _utc(value: datetime) -> datetime:
    return value if value.utcoffset() == _ZERO else value.astimezone(UTC)


def link(records: Iterable[Record], heads: dict[str, tuple[int, str]], recorded_at: datetime) -> list[tuple[Any, ...]]:
    """Chain the records (in order) after `heads`, advancing them; return rows in COPY column order.

    The hashed fields are handed to the canonical JSON as objects (ids, UTC instants): orjson writes
    them exactly as `str(uuid)` and `datetime.isoformat()`, the form `stored_to_hashed` reads back.
    This loop is the audit's hot path, hence one dict per row and no helper calls it can avoid.
    """
    out: list[tuple[Any, ...]] = []
    recorded = _utc(recorded_at)
    for record in records:
        env = record.envelope
        payload = env.payload
        chain = f"{record.topic}/{record.partition}"
        seq, prev = heads.get(chain, (0, GENESIS))
        seq += 1
        occurred = _utc(env.occurred_at)
        key, type_ = pg_text(env.incident_key), pg_text(env.type)
        service = key.split("/", 1)[0]
        priority, actor = payload.get("priority"), payload.get("actor")
        priority = pg_text(priority) if isinstance(priority, str) else None
        actor = pg_text(actor) if isinstance(actor, str) else None
        teams = [pg_text(t) for t in teams_of(payload)]
        body = {
            "chain": chain,
            "chain_seq": seq,
            "prev_hash": prev,
            "event_id": env.event_id,
            "type": type_,
            "schema_version": env.schema_version,
            "occurred_at": occurred,
            "recorded_at": recorded,
            "incident_key": key,
            "incident_id": env.incident_id,
            "causation_id": env.causation_id,
            "correlation_id": env.correlation_id,
            "topic": record.topic,
            "kafka_partition": record.partition,
            "kafka_offset": record.offset,
            "service": service,
            "priority": priority,
            "actor": actor,
            "teams": teams,
        }
        payload_text = canonical(payload)
        digest = row_hash(body, payload_text)
        heads[chain] = (seq, digest)
        out.append(
            (
                env.event_id,
                type_,
                env.schema_version,
                occurred,
                recorded,
                key,
                env.incident_id,
                env.causation_id,
                env.correlation_id,
                record.topic,
                record.partition,
                record.offset,
                payload_text.decode(),
                chain,
                seq,
                prev,
                digest,
                service,
                priority,
                actor,
                teams,
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
