"""The notifier's waiting deliveries on `notifications.pending`: written, held until due, attempted.

The notifier's one consumer reads `escalations.events` and `notifications.pending` together, with
range assignment: partition n of both topics goes to the same notifier, so one process sees every
attempt of a notification (its key lock and ledger keep it to one page). Offsets of the pending
topic are committed only up to the first record not yet attempted (`holding.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Gauge

from services.notifier.holding import Due, Holding
from services.notifier.pending import Pending, PendingError, PendingSend, decode_pending, encode, incident_key_of
from shared.kafka import Publisher, PublishError
from shared.logging import get_logger
from shared.topics import NOTIFICATION_PENDING

log = get_logger("notifier")

WAITING = Gauge("notifier_deliveries_waiting", "Deliveries held until their delay or retry is due")
REQUEUE_SECONDS = 1.0  # an attempt whose outcome could not be written is tried again this much later

Attempt = Callable[[PendingSend], Awaitable[None]]


class DeferredDeliveries:
    """Writes waits to Kafka, holds the ones of owned partitions, attempts each when it is due."""

    def __init__(self, publisher: Publisher, attempt: Attempt, concurrency: int = 500) -> None:
        self._publisher = publisher
        self._attempt = attempt
        self._slots = asyncio.Semaphore(concurrency)
        self.holding = Holding()
        self._tasks: dict[int, set[asyncio.Task[None]]] = {}
        self._committed: dict[int, int] = {}

    async def write(self, record: Pending) -> None:
        """Write one wait (or an incident's `Settled`) to notifications.pending."""
        key = incident_key_of(record).encode()
        await self._publisher.publish_record(NOTIFICATION_PENDING, key, encode(record), what="a pending delivery")

    def take(self, partition: int, offset: int, value: bytes | None) -> PendingError | None:
        """Take one record read from the topic; the error of an unreadable one (the caller dead-letters it)."""
        try:
            record = decode_pending(value)
        except PendingError as exc:
            self.holding.take(partition, offset, None)
            return exc
        for void in self.holding.take(partition, offset, record):
            log.info(
                "waiting delivery dropped",
                reason="incident settled" if not isinstance(record, PendingSend) else "superseded by a newer attempt",
                idempotency_key=void.key,
                incident_id=str(void.incident_id),
                attempt=void.attempt,
            )
        WAITING.set(len(self.holding))
        return None

    def fire(self, now: datetime) -> None:
        """Start the attempts due at `now` (each in its own task, at most `concurrency` sending at once)."""
        for due in self.holding.due(now):
            task = asyncio.create_task(self._run(due), name=f"deferred-{due.partition}-{due.offset}")
            tasks = self._tasks.setdefault(due.partition, set())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        WAITING.set(len(self.holding))

    async def _run(self, due: Due) -> None:
        try:
            async with self._slots:
                await self._attempt(due.item)
        except PublishError as exc:
            log.warning("deferred attempt not recorded; trying again", error=str(exc), idempotency_key=due.item.key)
            self.holding.requeue(due, datetime.now(UTC) + timedelta(seconds=REQUEUE_SECONDS))
            return
        except Exception:
            log.exception("deferred attempt failed; held again", idempotency_key=due.item.key)
            self.holding.requeue(due, datetime.now(UTC) + timedelta(seconds=REQUEUE_SECONDS))
            return
        self.holding.done(due.partition, due.offset)

    def seconds_to_next(self, now: datetime, longest: float) -> float:
        """How long the loop may wait for records before something held is due."""
        nxt = self.holding.next_due()
        if nxt is None:
            return longest
        return min(longest, max(0.0, (nxt - now).total_seconds()))

    def offsets_to_commit(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The pending topic's offsets that moved since the last commit."""
        out: dict[TopicPartition, OffsetAndMetadata] = {}
        for partition, offset in self.holding.commit_offsets().items():
            if self._committed.get(partition) != offset:
                out[TopicPartition(NOTIFICATION_PENDING, partition)] = OffsetAndMetadata(offset, "")
        return out

    def committed(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Record a successful commit."""
        for tp, meta in offsets.items():
            if tp.topic == NOTIFICATION_PENDING:
                self._committed[tp.partition] = meta.offset

    def assign(self, partition: int, end: int | None) -> None:
        """A pending partition became ours: fire nothing of it before reading up to `end` (None: until
        `holding.open` sets it)."""
        self.holding.assign(partition, end)

    async def revoke_wait(self, partitions: list[int]) -> None:
        """Pending partitions go to another notifier: let their attempts in flight finish first."""
        running = [t for p in partitions for t in self._tasks.get(p, set())]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def forget(self, partitions: list[int]) -> None:
        """Drop what is held of partitions handed over (their next owner reads them from the commit)."""
        for p in partitions:
            self.holding.revoke(p)
            self._committed.pop(p, None)
        WAITING.set(len(self.holding))

    async def drain(self) -> None:
        """Wait for every attempt in flight (graceful stop)."""
        running = [t for tasks in self._tasks.values() for t in tasks]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
