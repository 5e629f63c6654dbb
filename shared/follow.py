"""Read a whole topic from the beginning and keep following it, without a consumer group.

For in-memory views every instance keeps of a topic (the intake's incident directory, the
notifier's ledger of delivered notifications): `ready` is set once everything that was in the
topic at start has been read. Kafka going away is retried; the view is only ever added to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from shared.kafka import partitions_of
from shared.logging import get_logger

log = get_logger("follow")


BATCH_BYTES = 64 * 1024  # what a view with a `batch_wait_ms` waits for at most, in a fetch


async def follow_topic(
    bootstrap: str,
    topic: str,
    learn: Callable[[bytes | None], None],
    ready: asyncio.Event,
    what: str,
    batch_wait_ms: int | None = None,
    syncs: list[asyncio.Future[None]] | None = None,
) -> None:
    """Feed every value of `topic` to `learn`, for ever (cancel to stop).

    With `batch_wait_ms` the broker holds a fetch until `BATCH_BYTES` arrived or that long passed:
    for a view that may lag that much, instead of one fetch request per message written.
    A future put in `syncs` is resolved once everything the topic held when it was taken from
    there has been learnt.
    """
    requests = [] if syncs is None else syncs
    batching = {} if batch_wait_ms is None else {"fetch_min_bytes": BATCH_BYTES, "fetch_max_wait_ms": batch_wait_ms}
    # (the topic's ends when taken, the futures to resolve there): kept across reconnections
    waiting: list[tuple[dict[TopicPartition, int], list[asyncio.Future[None]]]] = []
    while True:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **batching)
        try:
            await consumer.start()
            partitions = await partitions_of(consumer, topic, timeout=60)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                if requests:
                    count = len(requests)  # those asked before the ends are read; a failure keeps them
                    now = await consumer.end_offsets(partitions)
                    waiting.append((now, requests[:count]))
                    del requests[:count]
                wait_ms = 500 if not waiting else 50
                batches = await consumer.getmany(timeout_ms=wait_ms, max_records=5000)
                for records in batches.values():
                    for record in records:
                        learn(record.value)
                if not ready.is_set() and all(await _reached(consumer, ends)):
                    ready.set()
                    log.info("caught up with the topic", topic=topic, view=what)
                for wanted, futures in list(waiting):
                    if all(await _reached(consumer, wanted)):
                        waiting.remove((wanted, futures))
                        for future in futures:
                            if not future.done():
                                future.set_result(None)
        except (KafkaError, OSError) as exc:
            log.warning("lost Kafka while following a topic; retrying", topic=topic, view=what, error=repr(exc))
            await asyncio.sleep(2.0)
        finally:
            await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> list[bool]:
    return [await consumer.position(tp) >= end for tp, end in ends.items()]


class TopicView:
    """An in-memory view of a whole topic, kept current in the background; subclasses `learn`."""

    topic: str
    what: str
    batch_wait_ms: int | None = None  # how long the view may lag to read in batches (None: at once)

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._syncs: list[asyncio.Future[None]] = []

    def learn(self, value: bytes | None) -> None:
        """Take one message of the topic."""
        raise NotImplementedError

    def start(self) -> None:
        """Follow the topic in the background (retrying while Kafka is away)."""
        self._task = asyncio.create_task(
            follow_topic(
                self._bootstrap, self.topic, self.learn, self.ready, self.what, self.batch_wait_ms, self._syncs
            ),
            name=self.what,
        )

    async def sync(self) -> None:
        """Return once the view has learnt everything the topic holds now (what another instance
        wrote before this call included). A lost connection re-reads the topic: it returns later."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncs.append(future)
        await future

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
