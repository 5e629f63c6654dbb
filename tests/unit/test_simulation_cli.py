"""`escalation policy simulate` and `policy replay` from files, as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from services.escalator.config import load_catalog
from services.escalator.core.simulator import Simulator
from shared import events as ev
from shared.envelope import new_envelope

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "config"
runner = CliRunner()

POLICY = """
services:
  shop:
    escalation_policy: p
policies:
  p:
    levels:
      - name: frontline
        delay: 0s
        targets: [{{type: webhook, name: frontline, url: "http://127.0.0.1:9/f"}}]
      - name: infrastructure
        delay: {delay}
        targets: [{{type: webhook, name: infrastructure, url: "http://127.0.0.1:9/i"}}]
"""


def test_simulate_prints_who_is_paged_when() -> None:
    result = runner.invoke(
        app, ["policy", "simulate", str(ROOT / "examples/simulations/outage-night.yaml"), "--config", str(EXAMPLES)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("+0:01:00" in line and "level 3 senior-management (hierarchical, rule)" in line for line in lines)
    assert any("+0:15:00" in line and "level 2 infrastructure" in line for line in lines)
    assert lines[-1] == "2 incidents, 3 pages, 3 SLA breaches"


def test_simulate_names_file_line_and_field_of_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("events:\n  - at: +0m\n    action: trigger\n    service: shop\n    dedup_key: x\n")
    result = runner.invoke(app, ["policy", "simulate", str(script), "--config", str(EXAMPLES)])
    assert result.exit_code == 2
    assert f"{script}:2: events.0.summary: Field required" in result.output


def _history(tmp_path: Path) -> Path:
    """Record an incident under a 10 s policy: frontline at 0, infrastructure at 10 s, ack at 30 s."""
    config = tmp_path / "recorded"
    config.mkdir()
    (config / "p.yaml").write_text(POLICY.format(delay="10s"))
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    sim = Simulator(load_catalog(config), t0)
    commands = [sim.send(ev.TRIGGER, ev.Trigger(service="shop", dedup_key="d", summary="down"))]
    commands.append(
        sim.send(
            ev.ACKNOWLEDGE, ev.Acknowledge(service="shop", dedup_key="d", actor="a"), at=t0 + timedelta(seconds=30)
        )
    )
    sim.advance_by(timedelta(minutes=5))
    lines = [c.model_dump_json() for c in commands]
    payloads = {t: m for t, m in ev.PAYLOADS.items()}
    for h in sim.timeline:
        env = new_envelope(
            h.type,
            payloads[h.type].model_validate(h.payload),
            incident_key=h.incident_key,
            occurred_at=h.at,
            incident_id=h.incident_id,
        )
        lines.append(json.dumps({**json.loads(env.to_json()), "topic": "escalations.events"}))
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_shows_what_a_slower_policy_would_have_done(tmp_path: Path) -> None:
    history = _history(tmp_path)
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    (candidate / "p.yaml").write_text(POLICY.format(delay="1m"))
    result = runner.invoke(app, ["policy", "replay", str(history), "--config", str(candidate)])
    assert result.exit_code == 0, result.output
    assert "DIFFERENT" in result.output
    assert "recorded : +0:00:00 L1 frontline; +0:00:10 L2 infrastructure" in result.output
    assert "candidate: +0:00:00 L1 frontline\n" in result.output
    assert "time to acknowledge: 0:00:30" in result.output
    assert result.output.splitlines()[-1] == "1 incidents replayed, 1 would page differently"


def test_replay_against_the_same_policy_changes_nothing(tmp_path: Path) -> None:
    history = _history(tmp_path)
    result = runner.invoke(app, ["policy", "replay", str(history), "--config", str(tmp_path / "recorded")])
    assert result.exit_code == 0, result.output
    assert "): same" in result.output
    assert result.output.splitlines()[-1] == "1 incidents replayed, 0 would page differently"


def test_replay_names_the_line_of_a_broken_export(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "incident.trigger"}\n')
    result = runner.invoke(app, ["policy", "replay", str(bad), "--config", str(EXAMPLES)])
    assert result.exit_code == 2
    assert f"{bad}:1:" in result.output
