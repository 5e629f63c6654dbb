"""KeyLocks: one incident's commands run one at a time, in the order they asked; others do not wait."""

from __future__ import annotations

import asyncio

from shared.key_locks import KeyLocks


async def test_same_key_runs_in_arrival_order_and_others_pass() -> None:
    locks = KeyLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def work(key: str, name: str, gate: asyncio.Event | None) -> None:
        async with locks.hold(key):
            order.append(f"start {name}")
            if gate is not None:
                await gate.wait()
            order.append(f"end {name}")

    first = asyncio.create_task(work("a", "a1", release))
    second = asyncio.create_task(work("a", "a2", None))
    third = asyncio.create_task(work("a", "a3", None))
    other = asyncio.create_task(work("b", "b1", None))
    await other  # another incident does not wait for a1
    assert order == ["start a1", "start b1", "end b1"]
    release.set()
    await asyncio.gather(first, second, third)
    assert order[3:] == ["end a1", "start a2", "end a2", "start a3", "end a3"]
    assert len(locks) == 0  # nobody holds or waits: the locks are gone


async def test_a_failing_holder_releases_the_key() -> None:
    locks = KeyLocks()

    async def fail() -> None:
        async with locks.hold("a"):
            raise RuntimeError("boom")

    try:
        await fail()
    except RuntimeError:
        pass
    async with locks.hold("a"):
        assert len(locks) == 1
    assert len(locks) == 0
