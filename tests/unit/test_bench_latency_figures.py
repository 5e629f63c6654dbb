"""The per-service benchmarks' shared arithmetic (bench/figures.py)."""

from __future__ import annotations

import os

from bench.figures import cpu_seconds, quantiles, worst_by_second


def test_quantiles_of_a_hundred_latencies() -> None:
    figures = quantiles(float(ms) for ms in range(100, 0, -1))
    assert figures["max_ms"] == 100.0
    assert 50.0 <= figures["p50_ms"] <= 51.0
    assert 99.0 <= figures["p99_ms"] <= 100.0
    assert set(quantiles([1.0, 2.0], "raw_")) == {"raw_p50_ms", "raw_p99_ms", "raw_max_ms"}


def test_the_worst_latency_of_each_second_in_order() -> None:
    samples = [(2.5, 10.0), (0.1, 3.0), (0.9, 7.5), (2.0, 4.0), (1.2, 1.0)]
    assert worst_by_second(samples) == [7.5, 1.0, 10.0]


def test_cpu_seconds_of_this_process_grow_with_work() -> None:
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > before
