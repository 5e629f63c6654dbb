"""Table encoding of incident state: compact, snapshot stored once and re-attached by hash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.escalator.config import load_catalog
from services.escalator.core.simulator import Simulator
from services.escalator.core.state import IncidentState
from services.escalator.state_codec import StateCodec, is_snapshot_key, parse_snapshot_key, snapshot_key
from shared import events as ev

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config"


def _state() -> IncidentState:
    sim = Simulator(load_catalog(EXAMPLES), datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    sim.send(ev.TRIGGER, ev.Trigger(service="web-servers", dedup_key="x", summary="down", severity="critical"))
    return sim.states["web-servers/x"]


def test_round_trip_reattaches_the_snapshot_from_its_own_entry() -> None:
    state = _state()
    writer = StateCodec()
    assert state.snapshot is not None
    snapshot_raw = writer.encode_snapshot(state.snapshot)
    raw = writer.encode(3, 41, state)
    reader = StateCodec()  # a fresh worker that recovered the table
    digest = reader.remember(snapshot_raw)
    assert digest == state.snapshot_hash
    stored = reader.decode(raw)
    assert (stored.partition, stored.offset) == (3, 41)
    assert stored.state == state


def test_incident_entries_do_not_carry_the_policy() -> None:
    state = _state()
    raw = StateCodec().encode(0, 0, state)
    assert b"head-of-operations" not in raw  # a level name of the policy
    assert len(raw) < 2000
    partition, offset, digest, timer = StateCodec.header(raw)
    assert (partition, offset, digest) == (0, 0, state.snapshot_hash)
    assert timer is not None


def test_snapshot_keys_cannot_be_incident_keys() -> None:
    key = snapshot_key(5, "abc")
    assert is_snapshot_key(key)
    assert parse_snapshot_key(key) == (5, "abc")
    assert not is_snapshot_key("snapshot/abc")
