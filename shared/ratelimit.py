"""Token buckets: a rate per key with bursts (intake flood control, notifier throttles), time as an argument."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`rate` requests per second on average per key, bursts up to `burst`; time is an argument.

    Keys idle long enough to be full again are forgotten, so memory follows the active keys.
    """

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, _Bucket] = {}
        self._swept = 0.0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float, cost: float = 1.0) -> float | None:
        """Spend `cost` tokens of `key`'s bucket: None when allowed, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if cost > self.burst:
            return math.inf  # can never pass: the caller must split the request
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            self._sweep(now)
            return None
        return (cost - bucket.tokens) / self.rate

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Give back tokens taken for a request that did not go out after all."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + cost)

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        if now - self._swept < full_after:
            return
        self._swept = now
        for key in [k for k, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[key]
