"""Token buckets: bursts pass, the average rate holds, waits are exact, idle keys are forgotten."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from shared.ratelimit import TokenBuckets


def test_burst_then_exact_retry_after() -> None:
    buckets = TokenBuckets(rate=10, burst=3)
    assert [buckets.take("k", 0.0) for _ in range(3)] == [None, None, None]
    assert buckets.take("k", 0.0) == 0.1  # one token comes back every 1/rate seconds
    assert buckets.take("k", 0.05) == 0.05
    assert buckets.take("k", 0.1) is None
    assert buckets.take("other", 0.1) is None  # keys do not share a bucket


def test_a_batch_costs_its_size_and_one_larger_than_the_burst_never_passes() -> None:
    buckets = TokenBuckets(rate=100, burst=50)
    assert buckets.take("k", 0.0, cost=40) is None
    assert buckets.take("k", 0.0, cost=20) == 0.1
    assert buckets.take("k", 0.0, cost=51) == math.inf


def test_idle_keys_are_forgotten() -> None:
    buckets = TokenBuckets(rate=10, burst=10)
    for i in range(100):
        buckets.take(f"k{i}", 0.0)
    buckets.take("late", 5.0)
    assert len(buckets) == 1


@given(
    rate=st.floats(min_value=0.5, max_value=1000),
    burst=st.integers(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=300),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    buckets = TokenBuckets(rate=rate, burst=burst)
    now, passed = 0.0, 0
    for gap in gaps:
        now += gap
        wait = buckets.take("k", now)
        if wait is None:
            passed += 1
        else:
            assert wait > 0
    assert passed <= burst + rate * now + 1e-6
