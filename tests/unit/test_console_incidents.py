"""The console's incident read model: state folded from recorded events, and the clocks (next
escalation, SLA) from replaying recorded commands through the escalator's core at a given instant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.console.incidents import Command, Fact, IncidentView, clocks, fold
from services.escalator.config import load_catalog
from services.escalator.core.policy import Catalog
from shared import events as ev

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
KEY = "web/disk-full"
POLICY = """
services:
  web: {escalation_policy: ladder}
policies:
  ladder:
    levels:
      - {name: frontline, delay: 0s, targets: [{type: webhook, name: frontline, url: "http://x/f"}]}
      - {name: infrastructure, delay: 10m, targets: [{type: webhook, name: infrastructure, url: "http://x/i"}]}
    sla:
      P1: {acknowledge: 15m, resolve: 4h}
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    (tmp_path / "policies.yaml").write_text(POLICY)
    return load_catalog(tmp_path)


def _trigger(at: datetime = T0) -> Command:
    payload = ev.Trigger(service="web", dedup_key="disk-full", summary="Disk full", severity=ev.Severity.CRITICAL)
    return Command(uuid.uuid4(), ev.TRIGGER, at, payload.model_dump(mode="json"))


def _opened(catalog: Catalog, incident: Command) -> IncidentView:
    snapshot = catalog.snapshot_for("web")
    assert snapshot is not None
    opened = Fact(
        ev.INCIDENT_OPENED,
        T0,
        {
            "service": "web",
            "dedup_key": "disk-full",
            "summary": "Disk full",
            "severity": "critical",
            "policy_id": "ladder",
            "policy_hash": snapshot.digest(),
            "priority": "P1",
        },
    )
    step = Fact(
        ev.ESCALATION_STEP_REACHED, T0, {"level": 1, "cycle": 0, "level_name": "frontline"}, None, ("frontline",)
    )
    return fold(str(incident.event_id), KEY, [opened, step], T0)


def test_fold_follows_the_incident_through_its_events() -> None:
    opened = Fact(
        ev.INCIDENT_OPENED, T0, {"summary": "Disk full", "priority": "P2", "policy_id": "p", "service": "web"}
    )
    step = Fact(ev.ESCALATION_STEP_REACHED, T0, {"level": 1, "level_name": "frontline"}, None, ("frontline",))
    ack = Fact(ev.INCIDENT_ACKNOWLEDGED, T0 + timedelta(minutes=3), {"actor": "alice"})
    snooze = Fact(ev.INCIDENT_SNOOZED, T0 + timedelta(minutes=4), {"until": (T0 + timedelta(hours=1)).isoformat()})
    breach = Fact(ev.SLA_WARNING, T0 + timedelta(minutes=2), {"clock": "acknowledge", "fraction": 0.5})
    view = fold("i1", KEY, [opened, step, breach, ack, snooze], T0 + timedelta(minutes=5))
    assert (view.service, view.dedup_key, view.summary, view.priority) == ("web", "disk-full", "Disk full", "P2")
    assert (view.state, view.level, view.level_name, view.teams) == ("snoozed", 1, "frontline", ["frontline"])
    assert view.acknowledged_by == "alice"
    assert view.snoozed_until == (T0 + timedelta(hours=1)).isoformat()
    assert view.sla == {"acknowledge": {"fraction": 0.5, "breached": False}}
    later = fold("i1", KEY, [opened, step, ack, snooze], T0 + timedelta(hours=2))
    assert later.state == "acknowledged"  # the snooze ended
    resolved = fold("i1", KEY, [opened, ack, Fact(ev.INCIDENT_RESOLVED, T0 + timedelta(hours=1), {"actor": "bob"})], T0)
    assert (resolved.state, resolved.resolved_by, resolved.is_open) == ("resolved", "bob", False)
    reopened = fold("i1", KEY, [opened, Fact(ev.INCIDENT_RESOLVED, T0, {}), Fact(ev.INCIDENT_REOPENED, T0, {})], T0)
    assert (reopened.state, reopened.resolved_at) == ("triggered", None)


def test_clocks_of_a_triggered_incident_count_down_to_the_next_level_and_the_sla(catalog: Catalog) -> None:
    trigger = _trigger()
    view = _opened(catalog, trigger)
    now = T0 + timedelta(minutes=5)
    result = clocks(catalog, view, [trigger], now)
    assert result.policy_current
    assert result.next_escalation == {"at": (T0 + timedelta(minutes=10)).isoformat(), "kind": "escalate", "level": 2}
    by_clock = {c["clock"]: c for c in result.sla}
    assert by_clock["acknowledge"]["target_seconds"] == 900
    assert by_clock["acknowledge"]["elapsed_seconds"] == 300
    assert by_clock["acknowledge"]["breach_at"] == (T0 + timedelta(minutes=15)).isoformat()
    assert by_clock["resolve"]["breach_at"] == (T0 + timedelta(hours=4)).isoformat()


def test_acknowledging_stops_the_ladder_and_the_acknowledge_clock(catalog: Catalog) -> None:
    trigger = _trigger()
    view = _opened(catalog, trigger)
    ack = Command(
        uuid.uuid4(),
        ev.ACKNOWLEDGE,
        T0 + timedelta(minutes=3),
        ev.Acknowledge(service="web", dedup_key="disk-full", actor="alice").model_dump(mode="json"),
    )
    result = clocks(catalog, view, [trigger, ack], T0 + timedelta(minutes=5))
    assert result.next_escalation is None
    by_clock = {c["clock"]: c for c in result.sla}
    assert by_clock["acknowledge"]["stopped"]
    assert by_clock["acknowledge"]["elapsed_seconds"] == 180
    assert not by_clock["resolve"]["stopped"]


def test_a_changed_policy_is_said_and_missing_commands_give_no_clock(catalog: Catalog) -> None:
    trigger = _trigger()
    view = _opened(catalog, trigger)
    view.policy_hash = "0" * 64
    changed = clocks(catalog, view, [trigger], T0 + timedelta(minutes=1))
    assert not changed.policy_current
    assert "policy changed" in str(changed.note)
    missing = clocks(catalog, view, [], T0)
    assert missing.next_escalation is None
    assert str(missing.note).startswith("clocks unavailable")
    view.state = "resolved"
    assert clocks(catalog, view, [trigger], T0).note == "resolved: no clock runs"
