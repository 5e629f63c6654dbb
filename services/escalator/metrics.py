"""Prometheus metrics of the escalator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter("escalator_commands_total", "Commands processed, by type and outcome", ["type", "outcome"])
EMITTED = Counter("escalator_events_emitted_total", "Events emitted to escalations.events, by type", ["type"])
DEAD_LETTERS = Counter("escalator_dead_letters_total", "Unreadable commands sent to the dead-letter topic")
TIMERS_ARMED = Gauge("escalator_timers_armed", "Deadlines pending in this worker's index")
TIMER_LATENESS = Histogram(
    "escalator_timer_lateness_seconds",
    "Time from a deadline to its timer.fired command being sent",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SKIPPED = Counter(
    "escalator_commands_skipped_total",
    "Commands skipped: a repeat, one past a gap (read again), or one of a partition not positioned since a rebalance",
    ["reason"],
)
