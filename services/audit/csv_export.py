"""The audit history as CSV: the columns and their text, shared by the HTTP export and the CLI."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

CSV_COLUMNS = (
    "seq",
    "occurred_at",
    "recorded_at",
    "type",
    "incident_id",
    "incident_key",
    "service",
    "priority",
    "actor",
    "teams",
    "topic",
    "event_id",
    "causation_id",
    "correlation_id",
    "chain",
    "chain_seq",
    "hash",
    "payload",
)


def csv_line(values: list[Any]) -> bytes:
    """One CSV record (RFC 4180 line ending)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


def csv_row(entry: dict[str, Any]) -> list[Any]:
    """An audit entry as CSV values: teams joined by `;`, the payload as a JSON column."""
    values = {**entry, "teams": ";".join(entry["teams"]), "payload": json.dumps(entry["payload"], sort_keys=True)}
    return ["" if values.get(c) is None else values[c] for c in CSV_COLUMNS]
