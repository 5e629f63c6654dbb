"""Real payload samples of each intake format, through the running stack to the audit log.

The samples are the documented ones in tests/unit/samples (PagerDuty's Events v2 examples, an
Alertmanager v4 group with two alerts firing and one resolved, Grafana's webhook); only the
routing key or `?service=` is replaced, so each test writes under its own service and counts only
its own audit rows. The stack runs without access tokens, so a PagerDuty routing key and
`?service=` name the service directly. None of these services has a policy: incidents open and
nobody is paged, so the history of each test is exactly the commands and the incident events.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import events as ev
from shared.topics import ESCALATION_EVENTS, INCIDENT_COMMANDS
from tests.e2e.conftest import Stack, timeline
from tests.support import eventually

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[1] / "unit" / "samples"
WAIT_SECONDS = 60.0

Row = dict[str, Any]


def _sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def _service(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _sent_instant(value: str) -> datetime:
    """An RFC 3339 instant as sent, its fraction cut to microseconds (Go sends nanoseconds)."""
    return _at(re.sub(r"(\.\d{6})\d+", r"\1", value))


# --- reading the audit log back --------------------------------------------------------------------


async def _rows(http: httpx.AsyncClient, stack: Stack, service: str) -> list[Row]:
    """Every audit row of one service, in ingestion order (all pages)."""
    rows: list[Row] = []
    after: int | None = None
    while True:
        params: dict[str, str | int] = {"service": service, "limit": 1000}
        if after is not None:
            params["after"] = after
        response = await http.get(f"{stack.url('audit')}/v1/events", params=params)
        response.raise_for_status()
        page = response.json()
        rows.extend(page["items"])
        if page["next"] is None:
            return rows
        after = page["next"]


async def _rows_when(http: httpx.AsyncClient, stack: Stack, service: str, wanted: Counter[str]) -> list[Row] | None:
    """The service's rows once they hold at least `wanted` of each type, else None."""
    rows = await _rows(http, stack, service)
    have = Counter(r["type"] for r in rows)
    return rows if all(have[t] >= n for t, n in wanted.items()) else None


async def _rows_of(http: httpx.AsyncClient, stack: Stack, service: str, wanted: Counter[str], what: str) -> list[Row]:
    return await eventually(lambda: _rows_when(http, stack, service, wanted), WAIT_SECONDS, what)


def _types(rows: list[Row]) -> Counter[str]:
    return Counter(r["type"] for r in rows)


def _of_key(rows: list[Row], key: str) -> list[Row]:
    return [r for r in rows if r["incident_key"] == key]


def _incident_events(rows: list[Row]) -> list[Row]:
    """What the escalator decided (not the commands intake wrote)."""
    return [r for r in rows if r["topic"] == ESCALATION_EVENTS]


def _one(rows: list[Row], type_: str) -> Row:
    found = [r for r in rows if r["type"] == type_]
    assert len(found) == 1, (type_, [r["type"] for r in rows])
    return found[0]


def _assert_causal(entries: list[Row]) -> None:
    """Whatever an entry names as its cause is in the timeline, before it."""
    position = {e["event_id"]: i for i, e in enumerate(entries)}
    for i, entry in enumerate(entries):
        if entry["causation_id"] is not None:
            assert position[entry["causation_id"]] < i, (entry["type"], "precedes its cause")


async def _timeline_with(
    http: httpx.AsyncClient, stack: Stack, incident_id: str, types: list[str], what: str
) -> list[Row]:
    """The incident's timeline once it holds every one of `types` and the cause of every entry."""

    async def check() -> list[Row] | None:
        entries = await timeline(http, stack, incident_id)
        have = Counter(e["type"] for e in entries)
        causes = {e["causation_id"] for e in entries} - {None}
        complete = not Counter(types) - have and causes <= {e["event_id"] for e in entries}
        return entries if complete else None

    return await eventually(check, WAIT_SECONDS, what)


# --- PagerDuty Events v2 ---------------------------------------------------------------------------


async def _enqueue(http: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> str:
    response = await http.post(f"{stack.url('intake')}/v2/enqueue", json=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "success"
    assert answer["message"] == "Event processed"
    dedup: str = answer["dedup_key"]
    return dedup


def _assert_pagerduty_trigger(command: Row, sample: dict[str, Any], service: str) -> None:
    """The trigger command as intake wrote it: every PD-CEF field of the sample as sent."""
    sent, payload = sample["payload"], command["payload"]
    assert command["topic"] == INCIDENT_COMMANDS
    assert command["incident_key"] == f"{service}/{sample['dedup_key']}"
    assert payload["service"] == service
    assert payload["dedup_key"] == sample["dedup_key"]
    assert payload["summary"] == sent["summary"]
    assert payload["severity"] == sent["severity"]
    assert payload["source"] == sent["source"]
    assert payload["component"] == sent["component"]
    assert payload["group"] == sent["group"]
    assert payload["event_class"] == sent["class"]
    assert payload["custom_details"] == sent["custom_details"]
    assert _at(payload["timestamp"]) == datetime.strptime(sent["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert payload["links"] == sample["links"]
    assert payload["images"] == sample["images"]
    assert payload["client"] == sample["client"]
    assert payload["client_url"] == sample["client_url"]
    assert payload["integration"] == "pagerduty"


async def test_pagerduty_documented_trigger_acknowledge_resolve(http: httpx.AsyncClient, stack: Stack) -> None:
    service = _service("pd-samples")
    trigger = {**_sample("pagerduty_trigger.json"), "routing_key": service}
    dedup = trigger["dedup_key"]
    assert await _enqueue(http, stack, trigger) == dedup
    # The follow-up samples name another dedup key: they are pointed at the incident just triggered.
    for name in ("pagerduty_acknowledge.json", "pagerduty_resolve.json"):
        follow_up = {**_sample(name), "routing_key": service, "dedup_key": dedup}
        assert await _enqueue(http, stack, follow_up) == dedup

    # PagerDuty's answer carries no event id: the incident is found through the audit search.
    rows = await _rows_of(http, stack, service, Counter({ev.INCIDENT_OPENED: 1}), "the PagerDuty incident opened")
    incident_id = _one(rows, ev.INCIDENT_OPENED)["incident_id"]
    wanted = [
        ev.TRIGGER,
        ev.INCIDENT_OPENED,
        ev.ACKNOWLEDGE,
        ev.INCIDENT_ACKNOWLEDGED,
        ev.RESOLVE,
        ev.INCIDENT_RESOLVED,
    ]
    entries = await _timeline_with(http, stack, incident_id, wanted, "the PagerDuty incident's timeline")

    # Exactly the three commands and what they caused, in causal order. The follow-ups were sent
    # without waiting, so a command may be recorded before the decision on the one before it.
    assert Counter(e["type"] for e in entries) == Counter(wanted)
    _assert_causal(entries)
    command, opened, ack, acked, resolve, resolved = (_one(entries, t) for t in wanted)
    position = {e["event_id"]: i for i, e in enumerate(entries)}
    assert entries[0] is command
    assert position[command["event_id"]] < position[ack["event_id"]] < position[resolve["event_id"]]
    assert position[opened["event_id"]] < position[acked["event_id"]] < position[resolved["event_id"]]
    assert entries[-1] is resolved
    assert opened["causation_id"] == command["event_id"] == incident_id
    assert acked["causation_id"] == ack["event_id"]
    assert resolved["causation_id"] == resolve["event_id"]
    assert {e["incident_id"] for e in (opened, acked, resolved)} == {incident_id}
    assert {e["incident_key"] for e in entries} == {f"{service}/{dedup}"}
    assert {e["service"] for e in entries} == {service}

    sample = _sample("pagerduty_trigger.json")
    _assert_pagerduty_trigger(command, sample, service)
    assert opened["payload"]["service"] == service
    assert opened["payload"]["dedup_key"] == dedup
    assert opened["payload"]["summary"] == sample["payload"]["summary"]
    assert opened["payload"]["severity"] == sample["payload"]["severity"]
    assert opened["payload"]["priority"] == "P4"  # from severity info: the service has no policy
    assert opened["payload"]["policy_id"] == ""
    # PagerDuty's follow-ups carry no actor; none is invented.
    for answer in (ack, resolve):
        assert answer["payload"] == {"service": service, "dedup_key": dedup, "actor": None}
    assert acked["payload"]["actor"] is None
    assert resolved["payload"]["actor"] is None

    # Nothing else was written for the service: three commands, three decisions.
    assert _types(await _rows(http, stack, service)) == Counter(wanted)


async def test_pagerduty_acknowledge_of_unknown_dedup_key_is_recorded_and_changes_nothing(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    service = _service("pd-unknown")
    sample = _sample("pagerduty_trigger_openapi.json")
    dedup = sample["dedup_key"]  # "srv01/mysql": a slash inside the dedup key too
    ack = {**_sample("pagerduty_acknowledge.json"), "routing_key": service, "dedup_key": dedup}
    assert await _enqueue(http, stack, ack) == dedup
    # Then the documented trigger for that key: processed after the acknowledge (same incident key,
    # same partition), so once it is decided the acknowledge has been too. It must open a fresh,
    # unacknowledged incident.
    assert await _enqueue(http, stack, {**sample, "routing_key": service}) == dedup

    rows = await _rows_of(
        http, stack, service, Counter({ev.ACKNOWLEDGE: 1, ev.TRIGGER: 1, ev.INCIDENT_OPENED: 1}), "both commands"
    )
    recorded = _one(rows, ev.ACKNOWLEDGE)
    assert recorded["topic"] == INCIDENT_COMMANDS
    assert recorded["incident_key"] == f"{service}/{dedup}"
    assert recorded["incident_id"] is None
    assert recorded["payload"] == {"service": service, "dedup_key": dedup, "actor": None}
    # No decision was caused by the acknowledge; the only one is the trigger's opening.
    assert [r["type"] for r in _incident_events(rows)] == [ev.INCIDENT_OPENED]
    assert all(r["causation_id"] != recorded["event_id"] for r in rows)

    opened = _one(rows, ev.INCIDENT_OPENED)
    command = _one(rows, ev.TRIGGER)
    assert opened["causation_id"] == command["event_id"] == opened["incident_id"]
    _assert_pagerduty_trigger(command, sample, service)
    assert opened["payload"]["summary"] == sample["payload"]["summary"]
    assert opened["payload"]["severity"] == "critical"
    assert opened["payload"]["priority"] == "P1"
    entries = await timeline(http, stack, opened["incident_id"])
    assert [e["type"] for e in entries] == [ev.TRIGGER, ev.INCIDENT_OPENED]
    assert _types(await _rows(http, stack, service)) == Counter(
        {ev.ACKNOWLEDGE: 1, ev.TRIGGER: 1, ev.INCIDENT_OPENED: 1}
    )


# --- Alertmanager and Grafana webhooks -------------------------------------------------------------


async def _webhook(
    http: httpx.AsyncClient, stack: Stack, integration: str, service: str, body: dict[str, Any]
) -> list[dict[str, str]]:
    response = await http.post(
        f"{stack.url('intake')}/v1/integrations/{integration}", params={"service": service}, json=body
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted"
    events: list[dict[str, str]] = answer["events"]
    return events


def _links(alert: dict[str, Any]) -> list[dict[str, str]]:
    """The links the parser maps, in its order, leaving out empty URLs."""
    candidates = (
        ("Source", alert.get("generatorURL")),
        ("Runbook", alert["annotations"].get("runbook_url")),
        ("Dashboard", alert.get("dashboardURL")),
        ("Panel", alert.get("panelURL")),
        ("Silence", alert.get("silenceURL")),
    )
    return [{"href": url, "text": text} for text, url in candidates if url]


def _assert_alert_trigger(
    command: Row,
    alert: dict[str, Any],
    body: dict[str, Any],
    *,
    summary: str,
    severity: str,
    priority: str | None,
    source: str | None,
    client: str,
) -> None:
    payload = command["payload"]
    assert payload["dedup_key"] == alert["fingerprint"]
    assert payload["summary"] == summary
    assert payload["severity"] == severity
    assert payload.get("priority") == priority
    assert payload.get("source") == source
    assert payload["event_class"] == alert["labels"]["alertname"]
    assert payload["custom_details"] == {"labels": alert["labels"], "annotations": alert["annotations"]}
    assert payload["links"] == _links(alert)
    assert payload["images"] == []
    assert _at(payload["timestamp"]) == _sent_instant(alert["startsAt"])
    assert payload["client"] == client
    assert payload["client_url"] == body["externalURL"]
    assert payload["integration"] == client.lower()


async def test_alertmanager_two_firing_one_resolved(http: httpx.AsyncClient, stack: Stack) -> None:
    service = _service("am-samples")
    body = _sample("alertmanager_two_firing_one_resolved.json")
    db1, db2, web1 = body["alerts"]
    assert [a["status"] for a in body["alerts"]] == ["firing", "firing", "resolved"]

    accepted = await _webhook(http, stack, "alertmanager", service, body)
    assert [(e["type"], e["dedup_key"]) for e in accepted] == [
        (ev.TRIGGER, db1["fingerprint"]),
        (ev.TRIGGER, db2["fingerprint"]),
        (ev.RESOLVE, web1["fingerprint"]),
    ]
    assert [e["incident_key"] for e in accepted] == [f"{service}/{a['fingerprint']}" for a in body["alerts"]]

    wanted = Counter({ev.TRIGGER: 2, ev.RESOLVE: 1, ev.INCIDENT_OPENED: 2})
    rows = await _rows_of(http, stack, service, wanted, "two incidents and the resolve")

    # One incident per firing fingerprint, opened by the trigger intake answered for it.
    opened = {r["incident_key"]: r for r in rows if r["type"] == ev.INCIDENT_OPENED}
    assert set(opened) == {f"{service}/{db1['fingerprint']}", f"{service}/{db2['fingerprint']}"}
    cases = (
        # db1: summary annotation, critical, P1 from its priority label.
        (accepted[0], db1, db1["annotations"]["summary"], "critical", "P1", "P1"),
        # db2: no summary annotation, so the description; warning; "urgent" is no priority, so P3.
        (accepted[1], db2, db2["annotations"]["description"], "warning", None, "P3"),
    )
    for answer, alert, summary, severity, sent_priority, priority in cases:
        incident = opened[answer["incident_key"]]
        assert incident["incident_id"] == incident["causation_id"] == answer["event_id"]
        assert incident["payload"]["summary"] == summary
        assert incident["payload"]["severity"] == severity
        assert incident["payload"]["priority"] == priority
        entries = await _timeline_with(
            http, stack, answer["event_id"], [ev.TRIGGER, ev.INCIDENT_OPENED], f"the timeline of {alert['fingerprint']}"
        )
        assert [e["type"] for e in entries] == [ev.TRIGGER, ev.INCIDENT_OPENED]
        _assert_causal(entries)
        command = entries[0]
        assert command["event_id"] == answer["event_id"]
        _assert_alert_trigger(
            command,
            alert,
            body,
            summary=summary,
            severity=severity,
            priority=sent_priority,
            source=alert["labels"]["instance"],
            client="Alertmanager",
        )
        assert command["payload"]["links"][0] == {"href": alert["generatorURL"], "text": "Source"}

    # The resolved alert: recorded as a resolve command for its fingerprint.
    web1_key = f"{service}/{web1['fingerprint']}"
    resolve = _one(rows, ev.RESOLVE)
    assert resolve["event_id"] == accepted[2]["event_id"]
    assert resolve["incident_key"] == web1_key
    assert resolve["incident_id"] is None
    assert resolve["payload"] == {"service": service, "dedup_key": web1["fingerprint"], "actor": None}

    # It refers to no open incident: nothing may follow from it. A trigger for the same key comes
    # after it on the same partition, so once that trigger is decided the resolve has been too.
    barrier = await http.post(
        f"{stack.url('intake')}/v1/events",
        json={"event_action": "trigger", "service": service, "dedup_key": web1["fingerprint"], "summary": "after"},
    )
    assert barrier.status_code == 202, barrier.text
    barrier_id = barrier.json()["event_id"]
    wanted = Counter({ev.TRIGGER: 3, ev.RESOLVE: 1, ev.INCIDENT_OPENED: 3})
    rows = await _rows_of(http, stack, service, wanted, "the incident opened after the resolve")

    # Exactly these rows: three triggers (two from the webhook), one resolve, three openings.
    assert _types(rows) == wanted
    assert [r["type"] for r in _incident_events(_of_key(rows, web1_key))] == [ev.INCIDENT_OPENED]
    assert _one(_of_key(rows, web1_key), ev.INCIDENT_OPENED)["incident_id"] == barrier_id  # a fresh incident
    assert all(r["causation_id"] != resolve["event_id"] for r in rows)
    for answer in accepted[:2]:
        assert [r["type"] for r in _of_key(rows, answer["incident_key"])] == [ev.TRIGGER, ev.INCIDENT_OPENED]


async def test_grafana_webhook_variant(http: httpx.AsyncClient, stack: Stack) -> None:
    service = _service("grafana-samples")
    body = _sample("grafana_webhook.json")
    memory, cpu = body["alerts"]

    accepted = await _webhook(http, stack, "grafana", service, body)
    assert [(e["type"], e["dedup_key"]) for e in accepted] == [
        (ev.TRIGGER, memory["fingerprint"]),
        (ev.TRIGGER, cpu["fingerprint"]),
    ]

    wanted = Counter({ev.TRIGGER: 2, ev.INCIDENT_OPENED: 2})
    rows = await _rows_of(http, stack, service, wanted, "the two Grafana incidents")
    for answer, alert in zip(accepted, (memory, cpu), strict=True):
        entries = await _timeline_with(
            http, stack, answer["event_id"], [ev.TRIGGER, ev.INCIDENT_OPENED], f"the timeline of {alert['fingerprint']}"
        )
        assert [e["type"] for e in entries] == [ev.TRIGGER, ev.INCIDENT_OPENED]
        _assert_causal(entries)
        command, opened = entries
        assert command["event_id"] == opened["incident_id"] == answer["event_id"]
        assert command["incident_key"] == opened["incident_key"] == f"{service}/{alert['fingerprint']}"
        # No severity label: error, P2. No instance or job label: no source.
        _assert_alert_trigger(
            command,
            alert,
            body,
            summary=alert["annotations"]["summary"],
            severity="error",
            priority=None,
            source=None,
            client="Grafana",
        )
        # Grafana's empty dashboard and panel URLs are left out; its silence URL is kept.
        assert command["payload"]["links"] == [
            {"href": alert["generatorURL"], "text": "Source"},
            {"href": alert["annotations"]["runbook_url"], "text": "Runbook"},
            {"href": alert["silenceURL"], "text": "Silence"},
        ]
        assert opened["payload"]["summary"] == alert["annotations"]["summary"]
        assert opened["payload"]["severity"] == "error"
        assert opened["payload"]["priority"] == "P2"
        assert opened["payload"]["dedup_key"] == alert["fingerprint"]
    assert _types(rows) == wanted
