"""Notifier service: consumes escalation events, delivers them, publishes every outcome."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from fastapi import FastAPI

from services.notifier.channels.base import Channel
from services.notifier.channels.email import EmailChannel, SmtpSettings
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.opsgenie import OpsgenieChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.templates import Templates
from services.notifier.channels.webhook import SignedWebhookChannel
from services.notifier.deferred import DeferredDeliveries
from services.notifier.delivery import Deliverer, Throttle
from services.notifier.directory.loader import load_directory
from services.notifier.inflight import InFlight
from services.notifier.ledger import DeliveredLedger
from services.notifier.pending import Pending
from shared import events as ev
from shared.envelope import Envelope, EnvelopeError, decode
from shared.heap import settle_heap
from shared.http import install_problem_handlers, ops_router
from shared.kafka import Publisher, PublishError, ensure_topics, make_producer
from shared.key_locks import KeyLocks
from shared.links import LinkSigner
from shared.logging import get_logger
from shared.settings import NotifierSettings
from shared.topics import (
    ESCALATION_EVENTS,
    INCIDENT_COMMANDS,
    NOTIFICATION_PENDING,
    NOTIFICATION_RESULTS,
    dead_letter_topic,
)

log = get_logger("notifier")
GROUP = "notifier"
BATCH = 500  # records read at once
MAX_IN_FLIGHT = 2000  # escalation events handled at once; reading waits while this many are in hand
POLL_SECONDS = 0.2  # longest wait for records when no waiting delivery is due sooner
# A fetch answered by the broker as soon as one record is there made a fetch request per record or
# two at a steady 500 events/s, and writing them was the largest share of the notifier's CPU. The
# broker now holds a fetch until this much has arrived or this long has passed.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 5
CONNECTIONS = 100  # pooled HTTP connections, all kept alive


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands pending partitions over: attempts in flight finish and their offsets are committed first."""

    def __init__(self, worker: NotifierWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        events = [tp.partition for tp in revoked if tp.topic == ESCALATION_EVENTS]
        if events:
            await self._worker.hand_over_events(events)
        parts = [tp.partition for tp in revoked if tp.topic == NOTIFICATION_PENDING]
        if not parts:
            return
        deferred = self._worker.deferred
        await deferred.revoke_wait(parts)
        offsets = {tp: meta for tp, meta in deferred.offsets_to_commit().items() if tp.partition in parts}
        if offsets:
            try:
                await self._worker.consumer.commit(offsets)
            except KafkaError:
                log.warning("pending offsets not committed on hand-over; the next owner re-reads them")
        deferred.forget(parts)
        self._worker.forget_gates(parts)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        ends = await self._worker.consumer.end_offsets(assigned) if assigned else {}
        events = {tp.partition: ends[tp] for tp in assigned if tp.topic == ESCALATION_EVENTS}
        self._worker.events_gates.update(events)
        pending = [tp for tp in assigned if tp.topic == NOTIFICATION_PENDING]
        for tp in pending:
            # With its events partition: the gate is known once the events read again are handled.
            self._worker.deferred.assign(tp.partition, None if tp.partition in events else ends[tp])
        if pending:
            log.info("pending partitions assigned", partitions=sorted(tp.partition for tp in pending))


class NotifierWorker:
    """Consume-deliver-commit loop: offsets are committed only after the deliveries finished.

    One consumer reads escalation events and the notifier's own waiting deliveries
    (`deferred.py`); first attempts happen in the loop, later ones (delays, retries) when due.
    """

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.running = False
        self.inflight = InFlight()
        self._event_tasks: dict[int, set[asyncio.Task[None]]] = {}
        self._events_committed: dict[int, int] = {}
        self._committed_at = float("-inf")  # monotonic instant of the last commit from the loop
        # Event partitions assigned and not yet handled up to where they ended then (offset), and
        # those handled whose pending gate waits for the ledger (pending end, the ledger's sync): _open_gates.
        self.events_gates: dict[int, int] = {}
        self._syncing: dict[int, tuple[int, asyncio.Task[None]]] = {}
        self._keys = KeyLocks()  # one incident's events in their order
        self._room = asyncio.Event()  # set while fewer than MAX_IN_FLIGHT events are in hand
        self._room.set()

    async def start(self) -> None:
        """Create topics, connect, and start the loop (clients need the running event loop)."""
        settings = self.settings
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions, extra=[NOTIFICATION_PENDING])
        self.publisher = Publisher.owning(lambda: make_producer(settings.kafka_bootstrap_servers, "notifier"))
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=GROUP,
            client_id="notifier",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            # Partition n of both topics to the same notifier: every attempt of a notification in one process.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self.consumer.subscribe([ESCALATION_EVENTS, NOTIFICATION_PENDING], listener=_Rebalance(self))
        self.http = HttpPoster(CONNECTIONS, timeout=10.0)
        self.ledger = DeliveredLedger(settings.kafka_bootstrap_servers)
        links = None
        if settings.link_secret is not None:
            links = LinkSigner(
                settings.link_secret.get_secret_value().encode(),
                settings.notifier_link_base_url,
                timedelta(hours=settings.notifier_link_ttl_hours),
            )
        self.deliverer = Deliverer(
            build_channels(settings, self.http, Templates()),
            self._report,
            settings.notifier_max_attempts,
            settings.notifier_backoff_base_seconds,
            escalate=self._escalate,
            exhausted=self._park,
            directory=load_directory(settings.escalation_config_dir),
            links=links,
            ledger=self.ledger,
            backoff_max=settings.notifier_backoff_max_seconds,
            throttle=Throttle(settings.notifier_channel_rate_per_second, settings.notifier_target_rate_per_second),
            defer=self._defer,
        )
        self.deferred = DeferredDeliveries(self.publisher, self.deliverer.attempt)
        await self.http.open()
        await self.publisher.start()
        await self.consumer.start()
        self.ledger.start()
        self._task = asyncio.create_task(self._run(), name="notifier-loop")
        self.running = True

    async def _report(self, env: Envelope) -> None:
        await self.publisher.publish(NOTIFICATION_RESULTS, env)

    async def _escalate(self, command: Envelope) -> None:
        await self.publisher.publish(INCIDENT_COMMANDS, command)

    async def _defer(self, record: Pending) -> None:
        await self.deferred.write(record)

    async def _park(self, failed: Envelope) -> None:
        """A delivery that exhausted its retries: its last failed result, with the reason, is dead-lettered."""
        await self.publisher.publish(dead_letter_topic(GROUP), failed)

    async def stop(self) -> None:
        """Finish the events and attempts in hand, commit them, and close (graceful SIGTERM)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        running = [t for tasks in self._event_tasks.values() for t in tasks]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self.deferred.drain()
        for _, sync in self._syncing.values():
            sync.cancel()
        with contextlib.suppress(KafkaError):
            await self._commit()
        await self.consumer.stop()
        await self.ledger.stop()
        await self.publisher.stop()
        await self.http.close()
        self.running = False

    async def _run(self) -> None:
        # Nothing is sent before the ledger knows what was delivered before (a restart's redeliveries).
        while not self.ledger.ready.is_set() and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ledger.ready.wait(), timeout=0.5)
        while not self._stopping.is_set():
            try:
                wait = self.deferred.seconds_to_next(datetime.now(UTC), POLL_SECONDS)
                batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
                if not self._room.is_set():  # enough in hand: let some finish before reading more
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), timeout=wait)
                else:
                    batches = await self.consumer.getmany(timeout_ms=int(wait * 1000), max_records=BATCH)
                for tp, records in batches.items():
                    for record in records:
                        if tp.topic == NOTIFICATION_PENDING:
                            await self._take_pending(record)
                        else:
                            self._dispatch(record)
                for partition in self.deferred.holding.unknown_positions():
                    tp = TopicPartition(NOTIFICATION_PENDING, partition)
                    self.deferred.holding.advance(partition, await self.consumer.position(tp))
                if self.events_gates or self._syncing:
                    await self._open_gates()
                self.deferred.fire(datetime.now(UTC))
                # Offsets are committed at most this often while events flow (stop and hand-over
                # commit at once): a commit is a broker round trip the loop waits for, and at a
                # steady 500/s the loop committed on nearly every turn. A crash re-reads at most
                # this much more; the ledger and the gates keep that from paging twice or wrongly.
                if time.monotonic() - self._committed_at >= self.settings.notifier_commit_interval_seconds:
                    self._committed_at = time.monotonic()
                    await self._commit()
            except (KafkaError, PublishError):
                # Nothing past an unhandled event is committed; the loop reads on when Kafka is back.
                log.exception("notifier loop step failed", loop="notifier")
                await asyncio.sleep(1.0)

    async def _open_gates(self) -> None:
        """Let a pending partition fire once its events partition is handled up to where it ended at
        assignment, the ledger has read every result written until then, and the pending topic is
        read up to its end of that moment.

        Events read again after a crash or a hand-over write their waits again, after the settle
        already on the pending topic: a step whose delayed page is past due would fire at once,
        before the acknowledgement read again after it writes a new settle. So while a partition
        catches up, a step defers even its immediate sends (`deliver_step(catching_up=True)`), and
        every settle the events write is known before anything of their incidents fires. The
        ledger's sync makes the pages the previous owner delivered known before any is tried again."""
        ready: list[int] = []
        for partition, end in self.events_gates.items():
            position = await self.consumer.position(TopicPartition(ESCALATION_EVENTS, partition))
            if position >= end and self.inflight.handled_below(partition, end):
                ready.append(partition)
        if ready:
            pending = [TopicPartition(NOTIFICATION_PENDING, p) for p in ready if p in self.deferred.holding.partitions]
            for partition in ready:
                del self.events_gates[partition]
            if pending:
                ends = await self.consumer.end_offsets(pending)
                sync = asyncio.create_task(self.ledger.sync(), name="ledger-sync")
                for tp in pending:
                    self._syncing[tp.partition] = (ends[tp], sync)
        opened = [p for p, (_, sync) in self._syncing.items() if sync.done()]
        for partition in opened:
            end, _ = self._syncing.pop(partition)
            self.deferred.holding.open(partition, end)
        if opened:
            log.info("events read again are handled; pending partitions open", partitions=sorted(opened))

    def _dispatch(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Handle one escalation event in a task of its own (tasks start in the order they are made)."""
        self.inflight.start(record.partition, record.offset)
        if len(self.inflight) >= MAX_IN_FLIGHT:
            self._room.clear()
        task = asyncio.create_task(self._process(record), name=f"event-{record.partition}-{record.offset}")
        tasks = self._event_tasks.setdefault(record.partition, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """One event, after the events of its incident read before it; retried while Kafka is away."""
        key = (record.key or b"").decode("utf-8", "replace")
        delay = 1.0
        async with self._keys.hold(key):
            while True:
                try:
                    await self._handle(record)
                    break
                except (KafkaError, PublishError) as exc:
                    if self._stopping.is_set():
                        return  # not done: read again after the restart
                    log.warning("event not handled; trying again", error=str(exc), offset=record.offset)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                except Exception as exc:
                    # A bug must not stop this partition's pages for ever: the event is parked with the reason.
                    log.exception("event could not be handled; dead-lettered", offset=record.offset)
                    await self._dead_letter(record, f"{type(exc).__name__}: {exc}")
                    break
        self.inflight.done(record.partition, record.offset)
        if len(self.inflight) < MAX_IN_FLIGHT // 2:
            self._room.set()

    async def _commit(self) -> None:
        """Commit what moved: events up to the first still in hand, pending records up to the first unattempted."""
        offsets = self.deferred.offsets_to_commit()
        for partition, offset in self.inflight.commit_offsets().items():
            if self._events_committed.get(partition) != offset:
                offsets[TopicPartition(ESCALATION_EVENTS, partition)] = OffsetAndMetadata(offset, "")
        if not offsets:
            return
        await self.consumer.commit(offsets)
        self.deferred.committed(offsets)
        for tp, meta in offsets.items():
            if tp.topic == ESCALATION_EVENTS:
                self._events_committed[tp.partition] = meta.offset

    async def hand_over_events(self, partitions: list[int]) -> None:
        """Event partitions go to another notifier: finish their events in hand, commit, forget them."""
        running = [t for p in partitions for t in self._event_tasks.get(p, set())]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        offsets = {
            TopicPartition(ESCALATION_EVENTS, p): OffsetAndMetadata(o, "")
            for p, o in self.inflight.commit_offsets().items()
            if p in partitions
        }
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except KafkaError:
                log.warning("event offsets not committed on hand-over; the next owner re-reads them")
        for p in partitions:
            self.inflight.forget(p)
            self._events_committed.pop(p, None)
        self.forget_gates(partitions)

    def forget_gates(self, partitions: list[int]) -> None:
        """Partitions handed over: their catch-up is the next owner's."""
        for p in partitions:
            self.events_gates.pop(p, None)
            self._syncing.pop(p, None)

    async def _take_pending(self, record: ConsumerRecord[bytes, bytes]) -> None:
        error = self.deferred.take(record.partition, record.offset, record.value)
        if error is not None:
            log.warning("unreadable pending delivery dead-lettered", reason=str(error), offset=record.offset)
            await self._dead_letter(record, str(error))

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Park a record this notifier cannot handle, with the reason (never silently dropped)."""
        await self.publisher.dead_letter(
            GROUP,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
        )

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            env = decode(record.value)
        except EnvelopeError as exc:
            log.warning(
                "unreadable event dead-lettered", reason=str(exc), partition=record.partition, offset=record.offset
            )
            await self._dead_letter(record, str(exc))
            return
        if env.type == ev.ESCALATION_STEP_REACHED:
            # Before the partition's end at assignment the event may be one read again: see _open_gates.
            catching_up = record.offset < self.events_gates.get(record.partition, 0)
            await self.deliverer.deliver_step(env, catching_up=catching_up)
        elif env.type in (ev.INCIDENT_ACKNOWLEDGED, ev.INCIDENT_RESOLVED):
            await self.deliverer.settle(env)


def build_channels(settings: NotifierSettings, http: HttpPoster, templates: Templates) -> dict[str, Channel]:
    """The channels this notifier can deliver on, from its settings (email and Opsgenie only when configured)."""
    secret = settings.notifier_webhook_secret
    channels: dict[str, Channel] = {
        "webhook": SignedWebhookChannel(http, templates, secret.get_secret_value().encode() if secret else None),
        "slack": SlackChannel(http, templates),
        "teams": TeamsChannel(http, templates),
        "pagerduty": PagerDutyChannel(http, templates, settings.notifier_pagerduty_url),
    }
    if settings.notifier_smtp_host is not None:
        password = settings.notifier_smtp_password
        smtp = SmtpSettings(
            host=settings.notifier_smtp_host,
            port=settings.notifier_smtp_port,
            sender=settings.notifier_smtp_sender,
            username=settings.notifier_smtp_username,
            password=password.get_secret_value() if password else None,
            starttls=settings.notifier_smtp_starttls,
        )
        channels["email"] = EmailChannel(smtp, templates)
    if settings.notifier_opsgenie_key is not None:
        key = settings.notifier_opsgenie_key.get_secret_value()
        channels["opsgenie"] = OpsgenieChannel(http, templates, key, settings.notifier_opsgenie_url)
    return channels


def create_app(settings: NotifierSettings | None = None, *, serving: bool = False) -> FastAPI:
    """Build the notifier's ASGI app; the worker runs in its lifespan. `serving`: the app of a
    service process (see `shared.heap.settle_heap`)."""
    settings = settings or NotifierSettings()
    worker = NotifierWorker(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await worker.start()
        if serving:
            settle_heap()
        log.info("notifier started", port=settings.notifier_port)
        try:
            yield
        finally:
            await worker.stop()
            log.info("notifier stopped")

    async def health() -> dict[str, Any]:
        loop_ok = worker._task is not None and not worker._task.done()
        ledger = worker.ledger.ready.is_set() if worker.running else False
        return {"consumer": "ok" if worker.running and loop_ok else "down", "ledger": "ok" if ledger else "loading"}

    app = FastAPI(title="Escalation notifier", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(ops_router(health))
    return app
