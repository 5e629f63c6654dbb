"""The console's views of the config folder: policies as ladders, the simulator on script text, and
who is on call now with the next hand-offs (the escalator's and the notifier's own code underneath)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.console.oncall import on_call_now
from services.console.policies import catalog_view, run_script
from services.escalator.config import load_catalog
from services.notifier.directory.loader import load_directory
from shared.yamlconfig import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config"


def test_each_policy_is_a_ladder_with_cumulative_offsets() -> None:
    view = catalog_view(load_catalog(EXAMPLES))
    outage = next(p for p in view["policies"] if p["id"] == "server-outage")
    assert [(r["level"], r["name"], r["kind"]) for r in outage["levels"]] == [
        (1, "frontline", "functional"),
        (2, "infrastructure", "functional"),
        (3, "head-of-operations", "hierarchical"),
    ]
    assert [r["after_seconds"] for r in outage["levels"]] == [0, 15 * 60, 45 * 60]
    assert outage["levels"][0]["targets"] == [{"type": "webhook", "label": "frontline"}]
    assert (outage["repeat"], outage["repeat_delay_seconds"], outage["ack_timeout_seconds"]) == (1, 1800, 1800)
    assert {s["id"]: s["policy"] for s in view["services"]}["web-servers"] == "server-outage"


def test_the_simulator_runs_script_text_and_names_the_line_of_a_mistake() -> None:
    catalog = load_catalog(EXAMPLES)
    script = (
        "start: 2026-11-27T22:00:00Z\nwatch: 1h\nevents:\n"
        "  - {at: +0m, action: trigger, service: web-servers, dedup_key: w, summary: down, severity: critical}\n"
    )
    result = run_script(catalog, script)
    steps = [(e["offset_seconds"], e["level"]) for e in result["events"] if e["type"] == "escalation.step_reached"]
    assert steps == [(0, 1), (900, 2), (2700, 3)]
    assert result["end_seconds"] == 3600
    with pytest.raises(ConfigError) as bad:
        run_script(catalog, "events:\n  - {at: +0m, action: explode}\n")
    assert (bad.value.line, bad.value.field) == (2, "events.0.action")


def test_who_is_on_call_now_and_the_next_handoffs() -> None:
    directory = load_directory(EXAMPLES)
    monday_noon = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)  # after the Monday 09:00 Berlin hand-off
    (schedule,) = on_call_now(directory, monday_noon, handoffs=2)
    assert schedule["id"] == "infrastructure-on-call"
    assert schedule["teams"] == ["infrastructure"]
    assert [p["id"] for p in schedule["on_call"]] == ["erin"]
    assert schedule["until"] == "2026-12-07T09:00:00+01:00"
    assert [[p["id"] for p in n["on_call"]] for n in schedule["next"]] == [["carol"], ["dave"]]
