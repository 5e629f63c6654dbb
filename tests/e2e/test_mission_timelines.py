"""The five mission cases end to end, each with its full timeline read back from the audit API.

Each incident is triggered through intake, escalates under its mission policy (the policies of
examples/config with delays of seconds, in tests/e2e/mission_config), pages the webhook receiver,
is answered by an operator through intake, and its audit timeline is then checked entry by entry:
the trigger, the opening with its priority, every step in order with level, kind and targets, one
delivery per page, the operator's acknowledge and resolve with the actor, in causal order.
The five incidents run at once on one stack.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.escalator.config import load_catalog
from services.stack import processes
from services.webhook_receiver import Received
from shared import events as ev
from shared.yamlconfig import yaml_files
from tests.e2e.conftest import Stack, timeline
from tests.support import eventually

pytestmark = pytest.mark.e2e

MISSION_CONFIG = Path(__file__).parent / "mission_config"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "config"
# Stands for the receiver's base URL in the mission policies' webhook targets.
RECEIVER_PLACEHOLDER = "{receiver}"
# Longest wait for any one expected page or for a complete timeline.
WAIT_SECONDS = 60.0
MISSION_POLICIES = ("server-outage", "security", "application-failure", "customer-complaint", "network-failure")


@dataclass(frozen=True)
class Mission:
    """One mission case: the trigger, how many pages it must cause, and who answers."""

    service: str
    summary: str
    severity: str
    custom_details: dict[str, Any]
    pages: int
    operator: str
    acknowledges: bool  # the operator acknowledges before resolving; else resolves at once


MISSIONS = {
    "server-outage": Mission(
        service="web-servers",
        summary="web-03 unreachable: health checks failing",
        severity="critical",
        custom_details={"host": "web-03"},
        pages=2,  # frontline, then the infrastructure team
        operator="infra-irene",
        acknowledges=True,
    ),
    "security-breach": Mission(
        service="security-monitoring",
        summary="Data exfiltration from db-07 detected",
        severity="critical",
        custom_details={"category": "breach", "host": "db-07"},
        pages=1,  # senior management only
        operator="vp-security-vera",
        acknowledges=True,
    ),
    "application-failure": Mission(
        service="customer-portal",
        summary="Checkout answers HTTP 500 to every user",
        severity="error",
        custom_details={"users_affected": 25000, "region": "eu-west"},
        pages=3,  # app support, application engineering, engineering manager
        operator="eng-manager-erik",
        acknowledges=True,
    ),
    "customer-complaint": Mission(
        service="customer-support",
        summary="Customer 4711 charged twice, no answer for three days",
        severity="warning",
        custom_details={"ticket": "CS-4711", "customer": "ACME"},
        pages=2,  # support desk, then the service manager
        operator="service-manager-sam",
        acknowledges=False,
    ),
    "network-failure": Mission(
        service="core-network",
        summary="Core switch cs-1 down: branch offices offline",
        severity="error",
        custom_details={"business_impact": True, "device": "cs-1"},
        pages=3,  # one NOC engineer, network engineering, the IT operations manager
        operator="noc-nina",
        acknowledges=True,
    ),
}


@dataclass(frozen=True)
class Run:
    """What one mission did: the ids intake answered, the pages received, the audit timeline."""

    incident_id: str
    dedup_key: str
    acknowledge_id: str | None
    resolve_id: str
    pages: list[Received]
    entries: list[dict[str, Any]]


@dataclass(frozen=True)
class Step:
    """An escalation step a mission must reach, `after` its predecessor's instant (or the opening)."""

    level: int
    name: str
    kind: str
    reason: str
    targets: tuple[str, ...]
    after: timedelta


# --- the stack: the session's services, its escalator restarted with the mission policies added -----


def _restart_escalator(stack: Stack, env: dict[str, str]) -> None:
    proc = stack.process("escalator")
    processes.stop(proc)
    processes.start(proc, env)
    processes.wait_healthy(proc, timeout=120)


@pytest.fixture(scope="module")
def mission_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The session's stack whose escalator also knows the mission policies; restored afterwards.

    One escalator group at a time: a second group on the same topic would process every command
    too and emit its own events under the same derived ids, so the history would depend on a race.
    """
    config = tmp_path_factory.mktemp("missions") / "config"
    config.mkdir()
    for own in yaml_files(Path(stack.env["ESCALATION_CONFIG_DIR"])):
        shutil.copy(own, config / own.name)
    base = f"http://127.0.0.1:{stack.receiver.port}"
    for source in MISSION_CONFIG.glob("*.yaml"):
        (config / f"mission-{source.name}").write_text(source.read_text().replace(RECEIVER_PLACEHOLDER, base))
    load_catalog(config)  # a broken folder fails here, naming file and line, not as a dead escalator
    try:
        _restart_escalator(stack, {**stack.env, "ESCALATION_CONFIG_DIR": str(config)})
        yield stack
    finally:
        _restart_escalator(stack, stack.env)


# --- driving one mission through intake ---------------------------------------------------------


async def _send(http: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> str:
    response = await http.post(f"{stack.url('intake')}/v1/events", json=body)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["event_id"]
    return event_id


def _pages(stack: Stack, incident_id: str) -> list[Received]:
    return [r for r in stack.receiver.received if r.body.get("incident_id") == incident_id]


async def _pages_when(stack: Stack, incident_id: str, count: int) -> list[Received] | None:
    pages = _pages(stack, incident_id)
    return pages if len(pages) >= count else None


async def _complete(
    http: httpx.AsyncClient, stack: Stack, incident_id: str, deliveries: int
) -> list[dict[str, Any]] | None:
    """The timeline once it holds the resolution, a delivery result per page and every cause, else None.

    The audit consumes each topic at its own pace: a command may be stored after what it caused.
    """
    entries = await timeline(http, stack, incident_id)
    types = [e["type"] for e in entries]
    results = types.count(ev.NOTIFICATION_DELIVERED) + types.count(ev.NOTIFICATION_FAILED)
    causes = {e["causation_id"] for e in entries} - {None}
    causes_stored = causes <= {e["event_id"] for e in entries}
    return entries if ev.INCIDENT_RESOLVED in types and results >= deliveries and causes_stored else None


async def _fly(http: httpx.AsyncClient, stack: Stack, name: str, mission: Mission) -> Run:
    """Trigger, wait for the expected pages, answer as the operator, read the whole timeline."""
    dedup = f"{name}-{uuid.uuid4().hex[:8]}"
    incident_id = await _send(
        http,
        stack,
        {
            "event_action": "trigger",
            "service": mission.service,
            "dedup_key": dedup,
            "summary": mission.summary,
            "severity": mission.severity,
            "custom_details": mission.custom_details,
        },
    )  # the escalator opens the incident under its trigger's event id
    await eventually(
        lambda: _pages_when(stack, incident_id, mission.pages), WAIT_SECONDS, f"{mission.pages} pages of {name}"
    )
    answer = {"service": mission.service, "dedup_key": dedup, "actor": mission.operator}
    ack_id = await _send(http, stack, {"event_action": "acknowledge", **answer}) if mission.acknowledges else None
    resolve_id = await _send(http, stack, {"event_action": "resolve", **answer})
    entries = await eventually(
        lambda: _complete(http, stack, incident_id, mission.pages), WAIT_SECONDS, f"the full timeline of {name}"
    )
    return Run(incident_id, dedup, ack_id, resolve_id, _pages(stack, incident_id), entries)


@pytest.fixture(scope="module")
async def runs(mission_stack: Stack) -> dict[str, Run | BaseException]:
    """The five missions flown at once; each test reads its own (or re-raises its failure)."""
    async with httpx.AsyncClient(timeout=15) as http:
        flown = await asyncio.gather(
            *(_fly(http, mission_stack, name, mission) for name, mission in MISSIONS.items()),
            return_exceptions=True,
        )
    return dict(zip(MISSIONS, flown, strict=True))


def _run_of(runs: dict[str, Run | BaseException], name: str) -> Run:
    run = runs[name]
    if isinstance(run, BaseException):
        raise run
    return run


# --- reading a timeline -----------------------------------------------------------------------------


def _at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["occurred_at"])


def _due(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["payload"]["due_at"])


def _positions(entries: list[dict[str, Any]], type_: str) -> list[int]:
    return [i for i, e in enumerate(entries) if e["type"] == type_]


def _paths(run: Run) -> list[str]:
    """The receiver paths of the run's pages, in the order they arrived."""
    return [p.path for p in sorted(run.pages, key=lambda p: p.at)]


def _only(entries: list[dict[str, Any]], type_: str) -> tuple[int, dict[str, Any]]:
    found = _positions(entries, type_)
    assert len(found) == 1, f"{len(found)} {type_} entries"
    return found[0], entries[found[0]]


def _check(
    run: Run, mission: Mission, *, policy: str, priority: str, rule: str | None, steps: list[Step], exhausted: bool
) -> None:
    """Assert the whole timeline of one mission run, and the pages the receiver got.

    `exhausted`: the last step was the policy's last level with no repeat left.
    """
    entries = run.entries
    timed = [s for s in steps if s.reason == "timeout"]
    deliveries = sum(len(s.targets) for s in steps)

    # Complete: exactly these entries, nothing lost, nothing doubled.
    expected = Counter(
        {
            ev.TRIGGER: 1,
            ev.INCIDENT_OPENED: 1,
            ev.ESCALATION_STEP_REACHED: len(steps),
            ev.TIMER_FIRED: len(timed),
            ev.NOTIFICATION_DELIVERED: deliveries,
            ev.ESCALATION_EXHAUSTED: int(exhausted),
            ev.ACKNOWLEDGE: int(mission.acknowledges),
            ev.INCIDENT_ACKNOWLEDGED: int(mission.acknowledges),
            ev.RESOLVE: 1,
            ev.INCIDENT_RESOLVED: 1,
        }
    )
    assert Counter(e["type"] for e in entries) == +expected, [e["type"] for e in entries]

    # Causal order: whatever an entry names as its cause is in the timeline, before it.
    position = {e["event_id"]: i for i, e in enumerate(entries)}
    for i, entry in enumerate(entries):
        if entry["causation_id"] is not None:
            assert position[entry["causation_id"]] < i, (entry["type"], "precedes its cause")
    # Nothing of another incident (commands through intake carry no incident id yet).
    assert {e["incident_id"] for e in entries} <= {None, run.incident_id}

    # The trigger as intake wrote it, first of all.
    trigger = entries[0]
    assert trigger["type"] == ev.TRIGGER
    assert trigger["event_id"] == run.incident_id
    assert trigger["payload"]["service"] == mission.service
    assert trigger["payload"]["dedup_key"] == run.dedup_key
    assert trigger["payload"]["summary"] == mission.summary
    assert trigger["payload"]["severity"] == mission.severity
    assert trigger["payload"]["custom_details"] == mission.custom_details

    # The opening: policy frozen in, priority decided.
    at_opened, opened = _only(entries, ev.INCIDENT_OPENED)
    assert opened["causation_id"] == run.incident_id
    assert opened["payload"]["service"] == mission.service
    assert opened["payload"]["policy_id"] == policy
    assert len(opened["payload"]["policy_hash"]) == 64
    assert opened["payload"]["priority"] == priority
    assert opened["payload"]["rule"] == rule

    # Every step in order, each at its policy instant, with level, kind, reason and targets.
    at_steps = _positions(entries, ev.ESCALATION_STEP_REACHED)
    assert at_steps[0] > at_opened
    instant = _at(opened)
    for step, at_step in zip(steps, at_steps, strict=True):
        reached = entries[at_step]
        payload = reached["payload"]
        assert payload["level"] == step.level
        assert payload["level_name"] == step.name
        assert payload["kind"] == step.kind
        assert payload["reason"] == step.reason
        assert [t["name"] for t in payload["targets"]] == list(step.targets)
        assert payload["cycle"] == 0
        assert payload["priority"] == priority
        assert payload["policy_id"] == policy
        assert _due(reached) == instant + step.after, step.name
        assert _at(reached) >= _due(reached)  # never before the policy's instant
        instant = _due(reached)
        cause = entries[position[reached["causation_id"]]]
        if step.reason == "timeout":  # a deadline of the escalator, fired through Kafka
            assert cause["type"] == ev.TIMER_FIRED
            assert abs(_due(cause) - _due(reached)) < timedelta(milliseconds=1)
        else:  # reached in the same decision as the opening
            assert cause["event_id"] == run.incident_id
            assert _at(reached) == _at(opened)

        # One delivery per target, after its step, matching the page the receiver got.
        for target in payload["targets"]:
            results = [
                e
                for e in entries
                if e["type"] == ev.NOTIFICATION_DELIVERED
                and e["payload"]["step_id"] == payload["step_id"]
                and e["payload"]["target"]["name"] == target["name"]
            ]
            assert len(results) == 1, (step.name, target["name"])
            delivered = results[0]
            assert delivered["causation_id"] == reached["event_id"]
            assert delivered["payload"]["channel"] == "webhook"
            assert delivered["payload"]["status_code"] == 200
            assert delivered["payload"]["attempt"] == 1
            assert delivered["payload"]["final"] is True
            pages = [
                p
                for p in run.pages
                if {k.lower(): v for k, v in p.headers.items()}.get("idempotency-key")
                == delivered["payload"]["idempotency_key"]
            ]
            assert len(pages) == 1, (step.name, target["name"])
            page = pages[0]
            assert page.path == urlsplit(target["url"]).path
            assert page.body["step_id"] == payload["step_id"]
            assert page.body["target"] == target["name"]
            assert (page.body["level"], page.body["level_name"], page.body["kind"]) == (
                step.level,
                step.name,
                step.kind,
            )
            assert page.body["priority"] == priority
            assert page.body["summary"] == mission.summary

    if exhausted:
        at_exhausted, exhausted_entry = _only(entries, ev.ESCALATION_EXHAUSTED)
        assert at_exhausted > at_steps[-1]
        assert (exhausted_entry["payload"]["level"], exhausted_entry["payload"]["cycle"]) == (steps[-1].level, 0)

    # Nobody else was paged, and the pages came level by level.
    assert len(run.pages) == deliveries
    arrivals = sorted(run.pages, key=lambda p: p.at)
    assert [p.body["level"] for p in arrivals] == sorted(p.body["level"] for p in arrivals)

    # The operator answered after the last page: acknowledge (maybe), then resolve, with the actor.
    first_answer = position[run.acknowledge_id or run.resolve_id]
    assert first_answer > at_steps[-1]
    if run.acknowledge_id is not None:
        at_ack = position[run.acknowledge_id]
        assert entries[at_ack]["type"] == ev.ACKNOWLEDGE
        assert entries[at_ack]["payload"]["actor"] == mission.operator
        at_acked, acked = _only(entries, ev.INCIDENT_ACKNOWLEDGED)
        assert acked["causation_id"] == run.acknowledge_id
        assert acked["payload"]["actor"] == mission.operator
        assert at_ack < position[run.resolve_id]
        assert at_acked < _only(entries, ev.INCIDENT_RESOLVED)[0]
    at_resolve = position[run.resolve_id]
    assert entries[at_resolve]["type"] == ev.RESOLVE
    assert entries[at_resolve]["payload"]["actor"] == mission.operator
    at_resolved, resolved = _only(entries, ev.INCIDENT_RESOLVED)
    assert resolved["causation_id"] == run.resolve_id
    assert resolved["payload"]["actor"] == mission.operator
    assert at_resolved > max(at_steps)


# --- the five missions --------------------------------------------------------------------------


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


async def test_server_outage_frontline_cannot_resolve_goes_to_infrastructure(
    runs: dict[str, Run | BaseException],
) -> None:
    run = _run_of(runs, "server-outage")
    _check(
        run,
        MISSIONS["server-outage"],
        policy="server-outage",
        priority="P1",  # from the critical severity
        rule=None,
        steps=[
            Step(1, "frontline", "functional", "opened", ("frontline",), _seconds(0)),
            Step(2, "infrastructure", "functional", "timeout", ("infrastructure",), _seconds(4)),
        ],
        exhausted=False,  # head of operations is next, 90 s later
    )
    # Frontline had its 4 s and did not acknowledge, so the infrastructure team was paged.
    assert _paths(run) == ["/frontline", "/infrastructure"]


async def test_security_breach_goes_to_senior_management_at_once(runs: dict[str, Run | BaseException]) -> None:
    run = _run_of(runs, "security-breach")
    _check(
        run,
        MISSIONS["security-breach"],
        policy="security",
        priority="P1",
        rule="breach goes straight to senior management",
        steps=[Step(3, "senior-management", "hierarchical", "rule", ("senior-management",), _seconds(0))],
        exhausted=True,  # senior management is the last level, and the policy does not repeat
    )
    # No clock ran before senior management was told: the first step is level 3, decided with the opening.
    _, opened = _only(run.entries, ev.INCIDENT_OPENED)
    _, reached = _only(run.entries, ev.ESCALATION_STEP_REACHED)
    assert _at(reached) == _due(reached) == _at(opened)
    assert ev.TIMER_FIRED not in [e["type"] for e in run.entries]
    assert _paths(run) == ["/senior-management"]


async def test_application_failure_affecting_many_users_is_prioritized_and_escalated(
    runs: dict[str, Run | BaseException],
) -> None:
    run = _run_of(runs, "application-failure")
    _check(
        run,
        MISSIONS["application-failure"],
        policy="application-failure",
        priority="P1",  # severity error alone would give P2; 25,000 users affected make it P1
        rule="many users affected",
        steps=[
            Step(1, "app-support", "functional", "opened", ("app-support",), _seconds(0)),
            # The rule's delay factor 0.25 turns the policy's 12 s and 16 s into 3 s and 4 s.
            Step(2, "application-engineering", "functional", "timeout", ("application-engineering",), _seconds(3)),
            Step(3, "engineering-manager", "hierarchical", "timeout", ("engineering-manager",), _seconds(4)),
        ],
        exhausted=True,
    )
    assert _paths(run) == ["/app-support", "/app-engineering", "/engineering-manager"]
    assert {p.body["priority"] for p in run.pages} == {"P1"}


async def test_unresolved_customer_complaint_goes_to_service_manager(runs: dict[str, Run | BaseException]) -> None:
    run = _run_of(runs, "customer-complaint")
    _check(
        run,
        MISSIONS["customer-complaint"],
        policy="customer-complaint",
        priority="P3",  # the service's default priority
        rule=None,
        steps=[
            Step(1, "support-desk", "functional", "opened", ("support-desk",), _seconds(0)),
            # 4 s of business time, on a calendar open around the clock.
            Step(2, "service-manager", "hierarchical", "timeout", ("service-manager",), _seconds(4)),
        ],
        exhausted=True,
    )
    assert _paths(run) == ["/support-desk", "/service-manager"]
    # Nobody at the desk acknowledged; the service manager resolved it.
    assert ev.ACKNOWLEDGE not in [e["type"] for e in run.entries]


async def test_network_failure_hitting_business_operations_runs_the_escalation_procedure(
    runs: dict[str, Run | BaseException],
) -> None:
    run = _run_of(runs, "network-failure")
    first = next(e for e in run.entries if e["type"] == ev.ESCALATION_STEP_REACHED)
    # Round robin: one NOC engineer per visit, either of the two.
    (noc,) = (t["name"] for t in first["payload"]["targets"])
    assert noc in {"noc-a", "noc-b"}
    _check(
        run,
        MISSIONS["network-failure"],
        policy="network-failure",
        priority="P1",  # severity error alone would give P2; business impact makes it P1
        rule="business operations affected",
        steps=[
            Step(1, "noc", "functional", "opened", (noc,), _seconds(0)),
            # The rule's delay factor 0.5 turns the policy's 6 s and 8 s into 3 s and 4 s.
            Step(2, "network-engineering", "functional", "timeout", ("network-engineering",), _seconds(3)),
            Step(3, "it-operations-manager", "hierarchical", "timeout", ("it-operations-manager",), _seconds(4)),
        ],
        exhausted=False,  # the procedure repeats forever, from the NOC again
    )
    assert _paths(run) == [f"/{noc}", "/network-engineering", "/it-operations-manager"]


def test_mission_config_mirrors_the_examples() -> None:
    """The test policies are the shipped ones with shorter clocks: same levels, kinds, targets, rules."""
    mine, shipped = load_catalog(MISSION_CONFIG), load_catalog(EXAMPLE_CONFIG)
    assert set(mine.policies) == set(MISSION_POLICIES)
    for policy_id in MISSION_POLICIES:
        ours, theirs = mine.policies[policy_id], shipped.policies[policy_id]
        assert [
            (lv.name, lv.kind, lv.business_time, lv.round_robin, [t.name for t in lv.targets]) for lv in ours.levels
        ] == [
            (lv.name, lv.kind, lv.business_time, lv.round_robin, [t.name for t in lv.targets]) for lv in theirs.levels
        ], policy_id
        assert all(
            ours_level.delay <= their_level.delay
            for ours_level, their_level in zip(ours.levels, theirs.levels, strict=True)
        ), policy_id
        assert ours.rules == theirs.rules, policy_id
        assert ours.repeat == theirs.repeat, policy_id
        assert set(ours.sla) == set(theirs.sla), policy_id
        assert all(
            t.url is not None and t.url.startswith(RECEIVER_PLACEHOLDER) for lv in ours.levels for t in lv.targets
        )
    for service_id, service in mine.services.items():
        original = shipped.services[service_id]
        assert service.escalation_policy == original.escalation_policy
        assert service.default_priority == original.default_priority
        assert (service.calendar is None) == (original.calendar is None)
