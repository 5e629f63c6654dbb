"""The notifier's throttle: sends held back for one address queue; only the first looks at the buckets."""

from __future__ import annotations

import asyncio
import contextlib
import time

from services.notifier.delivery import Throttle


class CountingThrottle(Throttle):
    """The real throttle, counting how often the buckets are looked at."""

    def __init__(self, channel_rate: float, target_rate: float) -> None:
        super().__init__(channel_rate, target_rate)
        self.looks = 0

    def wait(self, channel: str, address: str) -> float | None:
        self.looks += 1
        return super().wait(channel, address)


async def test_a_crowd_for_one_address_takes_its_turns_in_order_without_a_stampede() -> None:
    rate, crowd = 2000.0, 300  # bursts of 4,000: spend them first so every send of the crowd waits
    throttle = CountingThrottle(channel_rate=1_000_000, target_rate=rate)
    while throttle.wait("webhook", "https://hooks.example/a") is None:
        pass
    throttle.looks = 0
    done: list[int] = []

    async def send(n: int) -> None:
        await throttle.turn("webhook", "https://hooks.example/a")
        done.append(n)

    started = time.monotonic()
    await asyncio.gather(*(send(n) for n in range(crowd)))
    elapsed = time.monotonic() - started
    assert done == list(range(crowd))  # in the order they came
    assert elapsed >= (crowd - 1) / rate * 0.9  # the rate holds
    # Each send looks about twice (once early, once on its token). All waking together for each
    # token would be about crowd * crowd / 2 = 45,000 looks.
    assert throttle.looks <= 3 * crowd


async def test_another_address_is_not_held_up_by_a_throttled_one() -> None:
    throttle = Throttle(channel_rate=1_000_000, target_rate=1.0)  # one send a second to an address
    while throttle.wait("webhook", "slow") is None:
        pass
    slow = asyncio.create_task(throttle.turn("webhook", "slow"))
    await asyncio.wait_for(throttle.turn("webhook", "fast"), timeout=0.5)  # its own bucket is full
    assert not slow.done()
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow
