"""The run's table as Markdown and JSON, and its latency over time as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def markdown(result: dict[str, Any]) -> str:
    """One table: figure, measured, raw baseline of the same run, target."""
    lines = [
        f"Run {result['run']} on {result['machine']['cpus']} CPUs ({result['machine'].get('cpu', '')}), "
        f"{result['machine'].get('memory', '')}; commit {result['commit']}; {result['workers']} worker(s) of "
        "each service; Kafka and PostgreSQL on the same machine.",
        "",
        "| figure | measured | raw baseline (same run) | target |",
        "|---|---|---|---|",
    ]
    for row in result["table"]:
        lines.append(f"| {row['figure']} | {row['measured']} | {row['baseline']} | {row['target']} |")
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], folder: Path, series: list[tuple[float, float]]) -> list[Path]:
    """Write e2e.json, e2e.md and e2e-latency.png into `folder`; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / "e2e.json", folder / "e2e.md", folder / "e2e-latency.png"]
    out[0].write_text(json.dumps(result, indent=2, default=str))
    out[1].write_text(markdown(result))
    plot(series, out[2])
    return out


def plot(series: list[tuple[float, float]], path: Path) -> None:
    """Trigger-to-first-notification latency (ms) of each incident against when it was triggered (s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
    if series:
        xs, ys = zip(*series, strict=True)
        ax.scatter(xs, ys, s=2, alpha=0.4, color="#1f77b4", label="one incident")
        ax.set_yscale("log")
    ax.axhline(250, color="#d62728", linewidth=1, linestyle="--", label="target p99 250 ms")
    ax.set_xlabel("seconds into the latency phase (trigger sent)")
    ax.set_ylabel("trigger to first notification (ms)")
    ax.set_title("escalation bench: trigger to first notification")
    ax.legend(loc="upper right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
