"""End to end: trigger through intake, escalation by the escalator, delivery, audit timeline."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ESCALATION_DELAY, Stack, timeline
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def _send(http: httpx.AsyncClient, stack: Stack, action: str, dedup: str, **extra: Any) -> dict[str, Any]:
    body = {"event_action": action, "service": stack.service, "dedup_key": dedup, **extra}
    response = await http.post(f"{stack.url('intake')}/v1/events", json=body)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


def _hooks_for(stack: Stack, incident_id: str) -> list[dict[str, Any]]:
    return [r.body for r in stack.receiver.received if r.body.get("incident_id") == incident_id]


async def test_unacknowledged_trigger_escalates_exactly_once(stack: Stack, http: httpx.AsyncClient) -> None:
    dedup = f"disk-full-{uuid.uuid4().hex[:6]}"
    trig = await _send(http, stack, "trigger", dedup, summary="Disk full on db1", severity="critical")
    incident_id = trig["event_id"]  # the escalator opens the incident under its trigger's id

    before = len(stack.receiver.received)
    got = await stack.receiver.wait_for(before + 1, timeout=60)
    hook = next(h for h in (r.body for r in got[before:]) if h["incident_id"] == incident_id)
    assert hook["level"] == 1
    assert hook["target"] == "infrastructure"
    assert hook["summary"] == "Disk full on db1"

    # The escalation waited for the policy's delay: the step happened no earlier than open + delay.
    entries = await eventually(
        lambda: _entries_with(http, stack, incident_id, "notification.delivered"), 60, "delivery in the timeline"
    )
    opened = _at(entries, "incident.opened")
    step = _at(entries, "escalation.step_reached")
    assert (step - opened) >= ESCALATION_DELAY - 0.05

    # Resolve, then wait for the resolve to be audited: everything before it has been delivered.
    await _send(http, stack, "resolve", dedup, actor="alice")
    entries = await eventually(
        lambda: _entries_with(http, stack, incident_id, "incident.resolved"), 60, "resolve in the timeline"
    )
    assert len(_hooks_for(stack, incident_id)) == 1

    types = [e["type"] for e in entries]
    assert types.index("incident.trigger") < types.index("incident.opened")
    assert types.index("incident.opened") < types.index("timer.fired") < types.index("escalation.step_reached")
    assert types.index("escalation.step_reached") < types.index("notification.delivered")
    assert types.count("escalation.step_reached") == 1
    assert types.count("notification.delivered") == 1
    assert types[-1] == "incident.resolved"


async def test_the_notifications_acknowledge_link_acknowledges_as_the_target(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The link in a delivered notification: opened (a page, nothing changes), then its button pressed."""
    dedup = f"link-{uuid.uuid4().hex[:6]}"
    trig = await _send(http, stack, "trigger", dedup, summary="Queue stuck", severity="critical")
    incident_id = trig["event_id"]

    async def delivered() -> dict[str, Any] | None:
        hooks = _hooks_for(stack, incident_id)
        return hooks[0] if hooks else None

    hook = await eventually(delivered, 60, "the notification at the receiver")
    link = hook["links"]["acknowledge"]
    assert link.startswith(f"{stack.url('intake')}/v1/incidents/{incident_id}/acknowledge?")
    html = {"Accept": "text/html"}
    for _ in range(2):  # a mail scanner and then the person open it: pages only
        page = await http.get(link, headers=html)
        assert page.status_code == 200
        assert '<form method="post">' in page.text

    pressed = await http.post(link, headers=html)
    assert pressed.status_code == 202
    await _send(http, stack, "resolve", dedup, actor="alice")
    entries = await eventually(
        lambda: _entries_with(http, stack, incident_id, "incident.resolved"), 60, "the resolve in the timeline"
    )
    acks = [e for e in entries if e["type"] == "incident.acknowledge"]
    assert len(acks) == 1  # the button's; the two GETs sent nothing (they would be ordered before it)
    assert acks[0]["actor"] == "infrastructure (signed link)"
    assert [e["type"] for e in entries].count("incident.acknowledged") == 1


async def test_acknowledged_in_time_does_not_escalate(stack: Stack, http: httpx.AsyncClient) -> None:
    dedup = f"api-5xx-{uuid.uuid4().hex[:6]}"
    trig = await _send(http, stack, "trigger", dedup, summary="API 5xx rate 30%")
    incident_id = trig["event_id"]
    await _send(http, stack, "acknowledge", dedup, actor="bob")
    entries = await eventually(
        lambda: _entries_with(http, stack, incident_id, "incident.acknowledged"), 60, "ack in the timeline"
    )

    # A sentinel incident opened after the ack escalates after the same delay, so once its page
    # arrives the first incident's deadline has long passed: had it escalated, we would know.
    sentinel = await _send(http, stack, "trigger", f"sentinel-{uuid.uuid4().hex[:6]}", summary="sentinel")
    await eventually(
        lambda: _present(_hooks_for(stack, sentinel["event_id"])), 60 + ESCALATION_DELAY, "the sentinel's page"
    )
    assert _hooks_for(stack, incident_id) == []

    entries = await timeline(http, stack, incident_id)
    types = [e["type"] for e in entries]
    # Ordered by when each happened: the ack command may precede the escalator's opening.
    assert sorted(types) == sorted(
        ["incident.trigger", "incident.opened", "incident.acknowledge", "incident.acknowledged"]
    )
    assert types.index("incident.trigger") < types.index("incident.opened") < types.index("incident.acknowledged")
    assert types.index("incident.acknowledge") < types.index("incident.acknowledged")
    assert entries[types.index("incident.acknowledged")]["payload"]["actor"] == "bob"


async def _entries_with(
    http: httpx.AsyncClient, stack: Stack, incident_id: str, type_: str
) -> list[dict[str, Any]] | None:
    entries = await timeline(http, stack, incident_id)
    return entries if any(e["type"] == type_ for e in entries) else None


async def _present(items: list[Any]) -> list[Any] | None:
    return items or None


def _at(entries: list[dict[str, Any]], type_: str) -> float:
    from datetime import datetime

    return next(datetime.fromisoformat(e["occurred_at"]).timestamp() for e in entries if e["type"] == type_)
