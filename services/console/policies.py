"""Each service's escalation policy as a ladder, and `policy simulate` on a script sent as YAML text."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.escalator.core.policy import Catalog, Policy
from services.escalator.simulation import describe as describe_event
from services.escalator.simulation import load_script, simulate
from shared import events as ev

# The longest script the console accepts (a script is a handful of timed commands).
MAX_SCRIPT_BYTES = 64 * 1024


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _target(target: ev.Target) -> str:
    return target.name or target.id or target.url or target.type


def ladder(policy: Policy) -> dict[str, Any]:
    """A policy as rungs with their delay and the time since opening at which each is reached."""
    offset = timedelta(0)
    rungs = []
    for number, level in enumerate(policy.levels, start=1):
        offset += level.delay
        rungs.append(
            {
                "level": number,
                "name": level.name,
                "kind": level.kind.value,
                "delay_seconds": level.delay.total_seconds(),
                "after_seconds": offset.total_seconds(),
                "business_time": level.business_time,
                "round_robin": level.round_robin,
                "targets": [{"type": t.type, "label": _target(t)} for t in level.targets],
            }
        )
    return {
        "id": policy.id,
        "name": policy.name or policy.id,
        "levels": rungs,
        "repeat": policy.repeat,
        "repeat_delay_seconds": _seconds(policy.loop_delay) if policy.repeat != 0 else None,
        "ack_timeout_seconds": _seconds(policy.ack_timeout),
        "flap_window_seconds": _seconds(policy.flap_window),
        "rules": [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in policy.rules],
        "sla": {
            p.value: {
                "acknowledge_seconds": _seconds(t.acknowledge),
                "resolve_seconds": _seconds(t.resolve),
                "warn_at": list(t.warn_at),
                "business_time": t.business_time,
            }
            for p, t in sorted(policy.sla.items())
        },
    }


def catalog_view(catalog: Catalog) -> dict[str, Any]:
    """Every service with its policy id, and every policy as a ladder."""
    return {
        "services": [
            {
                "id": s.id,
                "name": s.name or s.id,
                "policy": s.escalation_policy,
                "default_priority": s.default_priority.value if s.default_priority else None,
                "calendar": s.calendar,
            }
            for s in sorted(catalog.services.values(), key=lambda s: s.id)
        ],
        "default_policy": catalog.default_policy,
        "policies": [ladder(p) for p in sorted(catalog.policies.values(), key=lambda p: p.id)],
    }


def run_script(catalog: Catalog, text: str) -> dict[str, Any]:
    """`escalation policy simulate` on a script's YAML text; ConfigError names the line and field."""
    with tempfile.TemporaryDirectory(prefix="console-sim-") as folder:
        path = Path(folder) / "script.yaml"
        path.write_text(text, encoding="utf-8")
        script = load_script(path)
    result = simulate(catalog, script)
    start = result.start
    events = [
        {
            "offset_seconds": (h.at - start).total_seconds(),
            "at": h.at.isoformat(),
            "incident_key": h.incident_key,
            "type": h.type,
            "level": h.payload.get("level") if h.type == ev.ESCALATION_STEP_REACHED else None,
            "detail": describe_event(h),
        }
        for h in result.sim.timeline
    ]
    end = max(e.at for e in script.events) + script.watch
    return {
        "start": start.isoformat(),
        "end_seconds": end.total_seconds(),
        "incidents": len(result.sim.states),
        "pages": len(result.sim.steps()),
        "sla_breaches": len(result.sim.events(ev.SLA_BREACHED)),
        "events": events,
    }
