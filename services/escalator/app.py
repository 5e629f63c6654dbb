"""Faust adapter of the escalator: commands in, `decide`, state table, timers, events out."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TP, EventT, Message, StreamT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.escalator import faust_acks, metrics
from services.escalator.core.decide import NEEDS_SNAPSHOT, decide
from services.escalator.core.heartbeat import incident_dedup_key, watch
from services.escalator.core.policy import Catalog
from services.escalator.core.state import Timer
from services.escalator.positions import (
    Admission,
    AppliedPositions,
    decode_position,
    encode_position,
    is_position_key,
    position_key,
)
from services.escalator.state_codec import (
    StateCodec,
    StoredIncident,
    is_snapshot_key,
    parse_snapshot_key,
    snapshot_key,
)
from services.escalator.timer_index import TimerIndex
from shared import events as ev
from shared.envelope import Envelope, EnvelopeError, decode, new_envelope
from shared.ids import derived_uuid7, incident_key, uuid7_unix_ms
from shared.kafka import Publisher, make_producer
from shared.key_locks import KeyLocks
from shared.logging import get_logger
from shared.settings import EscalatorSettings
from shared.topics import ESCALATION_EVENTS, INCIDENT_COMMANDS, dead_letter_topic

log = get_logger("escalator")

# Longest the timer loop sleeps without looking at the index (it is woken earlier on arm).
MAX_TIMER_SLEEP = 1.0


class Escalator:
    """Wires the pure core into one Faust app; one instance per worker process."""

    def __init__(self, settings: EscalatorSettings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        # After a rebalance, commands are read again from where they are known to be applied.
        self.positions = AppliedPositions()
        faust_acks.install(self)
        self.timers = TimerIndex()
        self._wake = asyncio.Event()
        self.app = faust.App(
            settings.escalator_app_id,
            broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
            store="memory://",
            topic_partitions=settings.topic_partitions,
            topic_replication_factor=1,
            producer_acks=-1,
            # Many commands are in flight at once: a few milliseconds of linger sends their events
            # and state writes in one request instead of one small request each.
            producer_linger=0.005,
            web_enabled=True,
            web_port=settings.escalator_port,
            web_bind="0.0.0.0",  # noqa: S104 - a container port
            web_in_thread=False,
            datadir=str(settings.escalator_data_dir),
            broker_commit_interval=0.5,
            consumer_auto_offset_reset="earliest",
            # On a rebalance, wait for the commands in flight before giving up partitions. Without
            # it (False), commands taken from the stream while the rebalance ran were skipped and
            # acknowledged by Faust (streams.py: a message of an old generation or of a paused flow
            # is acked as "skipped"), their offsets committed, and the commands never applied:
            # `escalation chaos` lost 109 incidents and 10 resolves in one run, at each worker's join.
            stream_wait_empty=True,
            # Table entries are bytes the StateCodec writes; recovery must hand back the same bytes.
            table_key_serializer="raw",
            table_value_serializer="raw",
            broker_session_timeout=settings.escalator_session_timeout_seconds,
            broker_heartbeat_interval=max(1.0, settings.escalator_session_timeout_seconds / 4),
        )
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.commands = self.app.topic(INCIDENT_COMMANDS, **raw)  # type: ignore[arg-type]
        self.events = self.app.topic(ESCALATION_EVENTS, **raw)  # type: ignore[arg-type]
        self.dead_letters = self.app.topic(dead_letter_topic("escalator"), **raw)  # type: ignore[arg-type]
        self.codec = StateCodec()
        self._stored_snapshots: set[tuple[int, str]] = set()  # (partition, hash) present in the table
        self.table = self.app.Table(
            "incident-state",
            default=None,
            partitions=settings.topic_partitions,
            schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw"),
        )
        self.locks = KeyLocks()
        # Several actors share the partitions' queue so one command's round trip to Kafka does not
        # hold up the others; a lock per incident key keeps one incident's commands in offset order.
        self.app.agent(self.commands, name="process-commands", concurrency=settings.escalator_concurrency)(
            self._process
        )
        self.app.task(self._timer_loop)
        self.table.on_recover(self._rebuild_timers)
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self._register_views()

    # --- commands ---------------------------------------------------------------------------

    async def _process(self, stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await self.handle(event)

    async def handle(self, event: EventT[bytes]) -> None:
        """Apply one command from `incidents.commands` (one writer per incident key)."""
        message = event.message
        admission = self.positions.admit(message.partition, message.offset)
        if admission is not Admission.APPLY:
            # Not the partition's next command: applying it could put an incident's commands out
            # of order, and a dropped one before it would be lost. Skipped, not acknowledged.
            faust_acks.release(self.app.consumer, message)
            metrics.SKIPPED.labels(admission.value).inc()
            if admission is Admission.GAP:
                try:
                    await self._seek_back(message.partition)
                except Exception:  # Kafka away: the timer loop seeks again after RESEEK_AFTER
                    log.exception("seek back over a gap failed", partition=message.partition)
            return
        try:
            cmd = decode(event.value, message.headers)  # type: ignore[arg-type]
        except EnvelopeError as exc:
            await self._dead_letter(event, str(exc))
        else:
            # No `await` between receiving the event and asking for the lock: that is what keeps order.
            async with self.locks.hold(cmd.incident_key):
                await self._apply(cmd, message)
        self.positions.applied(message.partition, message.offset)
        self._persist_position(message.partition)

    def _persist_position(self, partition: int) -> None:
        """Write the partition's applied position to the table now and then (from its own event).

        The write goes to the changelog partition of the command being handled, after the states
        of every command it covers (one producer, one partition: in order).
        """
        now = time.monotonic()
        offset = self.positions.due_for_persist(partition, now)
        if offset is not None:
            self.table[position_key(partition)] = encode_position(offset)
            self.positions.persisted(partition, offset, now)

    async def _seek_back(self, partition: int) -> None:
        """Read a partition again from its next command after a gap (at most every RESEEK_AFTER)."""
        offset = self.positions.reseek(partition, time.monotonic())
        if offset is None:
            return
        consumer: Any = self.app.consumer
        tp = TP(INCIDENT_COMMANDS, partition)
        earliest = (await consumer.earliest_offsets(tp)).get(tp, 0)
        if earliest > offset:  # the missing commands were deleted by retention
            self.positions.skip_to(partition, earliest)
            offset = earliest
        log.warning("commands partition sought back over a gap", partition=partition, offset=offset)
        await faust_acks.reposition(consumer, tp, offset, while_fetching=True)

    # Called by faust_acks after every rebalance, when Faust has sought to its committed offsets.

    def resume_offset(self, partition: int) -> int | None:
        """The stored applied position of a partition of incidents.commands (None: none stored)."""
        raw = self.table.get(position_key(partition))
        return None if raw is None else decode_position(raw)

    def sought(self, partition: int, offset: int) -> None:
        """The partition is read from `offset` on."""
        self.positions.sought(partition, offset)
        log.info("commands partition positioned", partition=partition, offset=offset)

    async def _apply(self, cmd: Envelope, message: Message) -> None:
        key = cmd.incident_key
        raw = self.table.get(key)
        if cmd.type == ev.HEARTBEAT_PING or (raw is not None and StateCodec.is_heartbeat(raw)):
            await self._apply_heartbeat(cmd, message, raw)
            return
        stored = self._load(raw)
        if stored is not None and stored.partition == message.partition and message.offset <= stored.offset:
            # Redelivered after a crash: the state already holds this command's effect.
            metrics.COMMANDS.labels(cmd.type, "redelivered").inc()
            return
        state = stored.state if stored is not None else None
        service = cmd.payload.get("service")
        snapshot = None
        if isinstance(service, str) and cmd.type in NEEDS_SNAPSHOT:
            is_open = state is not None and state.is_open
            snapshot = self.catalog.snapshot_for_command(service, cmd.type, cmd.payload, is_open)
        now = datetime.now(UTC)
        decision = decide(snapshot, state, cmd, now)
        outcome = "applied" if decision.changed else "ignored"
        metrics.COMMANDS.labels(cmd.type, outcome).inc()
        if not decision.changed or decision.state is None:
            log.debug("command ignored", event_id=str(cmd.event_id), incident_key=key, type=cmd.type)
            return
        new_state = decision.state
        # Events first, acknowledged by Kafka, then the state: a crash in between makes the command
        # run again on the old state and re-emit the same events under the same (derived) ids,
        # never leave a state whose events were lost.
        envelopes = [
            new_envelope(
                emit.type,
                emit.payload,
                incident_key=key,
                occurred_at=max(now, emit.at),  # when it was decided; the policy's instant is in the payload
                incident_id=new_state.incident_id,
                cause=cmd,
                event_id=derived_uuid7(uuid7_unix_ms(cmd.event_id), cmd.event_id, index, emit.type),
            )
            for index, emit in enumerate(decision.emits)
        ]
        pending = [
            await self.events.send(key=key.encode(), value=out.to_json(), headers=out.kafka_headers())
            for out in envelopes
        ]
        await asyncio.gather(*pending)
        for out in envelopes:
            metrics.EMITTED.labels(out.type).inc()
            log.info(
                "event emitted",
                type=out.type,
                event_id=str(out.event_id),
                incident_id=str(new_state.incident_id),
                incident_key=key,
                causation_id=str(cmd.event_id),
            )
        digest = new_state.snapshot_hash
        if (
            new_state.snapshot is not None
            and digest is not None
            and (message.partition, digest) not in self._stored_snapshots
        ):
            self.table[snapshot_key(message.partition, digest)] = self.codec.encode_snapshot(new_state.snapshot)
            self._stored_snapshots.add((message.partition, digest))
        self.table[key] = self.codec.encode(message.partition, message.offset, new_state)
        self._index(key, new_state.timer, message.partition)

    async def _apply_heartbeat(self, cmd: Envelope, message: Message, raw: bytes | None) -> None:
        """A heartbeat monitor's ping or timer: store the watch, send the incident commands it makes."""
        key = cmd.incident_key
        state = None
        if raw is not None:
            if not StateCodec.is_heartbeat(raw):  # an incident's own dedup key collides with a monitor's
                log.warning("heartbeat ping for an incident key ignored", incident_key=key)
                metrics.COMMANDS.labels(cmd.type, "ignored").inc()
                return
            partition, offset, state = StateCodec.decode_heartbeat(raw)
            if partition == message.partition and message.offset <= offset:
                metrics.COMMANDS.labels(cmd.type, "redelivered").inc()
                return
        now = datetime.now(UTC)
        decision = watch(state, cmd, now)
        metrics.COMMANDS.labels(cmd.type, "applied" if decision.changed else "ignored").inc()
        if not decision.changed or decision.state is None:
            return
        monitor = decision.state
        # Commands first, acknowledged, then the state (as for incident events): a crash in between
        # sends them again under the same derived ids.
        outs = [
            new_envelope(
                type_,
                payload,
                incident_key=incident_key(monitor.service, incident_dedup_key(monitor.name)),
                occurred_at=now,
                cause=cmd,
                event_id=derived_uuid7(uuid7_unix_ms(cmd.event_id), cmd.event_id, index, type_),
            )
            for index, (type_, payload) in enumerate(decision.commands)
        ]
        pending = [
            await self.commands.send(key=out.incident_key.encode(), value=out.to_json(), headers=out.kafka_headers())
            for out in outs
        ]
        await asyncio.gather(*pending)
        for out in outs:
            log.info(
                "heartbeat command sent",
                type=out.type,
                event_id=str(out.event_id),
                incident_key=out.incident_key,
                causation_id=str(cmd.event_id),
                heartbeat=monitor.name,
            )
        self.table[key] = StateCodec.encode_heartbeat(message.partition, message.offset, monitor)
        self._index(key, monitor.timer, message.partition)

    def _load(self, raw: bytes | None) -> StoredIncident | None:
        """The incident of a table value read by the caller (its snapshot fetched once if needed)."""
        if raw is None:
            return None
        partition, _, digest, _ = StateCodec.header(raw)
        if digest is not None and not self.codec.knows(digest):
            snapshot = self.table.get(snapshot_key(partition, digest))
            if snapshot is None:
                raise RuntimeError(f"snapshot {digest} missing from partition {partition}")
            self.codec.remember(snapshot)
        return self.codec.decode(raw)

    def _index(self, key: str, timer: Timer | None, partition: int) -> None:
        """Keep the in-memory timer index in step with a stored incident's or monitor's timer."""
        if timer is None:
            self.timers.disarm(key)
        else:
            self.timers.arm(key, timer.due_at.timestamp(), timer.token, partition)
            self._wake.set()
        metrics.TIMERS_ARMED.set(len(self.timers))

    async def _dead_letter(self, event: EventT[bytes], reason: str) -> None:
        msg = event.message
        metrics.DEAD_LETTERS.inc()
        log.warning("unreadable command dead-lettered", reason=reason, partition=msg.partition, offset=msg.offset)
        headers = [
            ("reason", reason.encode()),
            ("source", f"{msg.topic}/{msg.partition}/{msg.offset}".encode()),
        ]
        await self.dead_letters.send(key=msg.key, value=msg.value, headers=headers)

    # --- timers -----------------------------------------------------------------------------

    async def _rebuild_timers(self) -> None:
        """After recovery, index every armed deadline of the partitions now assigned here."""
        active = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == INCIDENT_COMMANDS}
        self.timers.clear()
        self._stored_snapshots.clear()
        for key, raw in self.table.items():
            if raw is None:
                continue
            if is_snapshot_key(key):
                self._stored_snapshots.add(parse_snapshot_key(key))
                continue
            if is_position_key(key):
                continue
            partition, _, _, timer = StateCodec.header(raw)
            if partition in active and timer is not None:
                due = datetime.fromisoformat(str(timer["due_at"])).timestamp()
                self.timers.arm(key, due, int(str(timer["token"])), partition)
        metrics.TIMERS_ARMED.set(len(self.timers))
        log.info("timer index rebuilt", timers=len(self.timers), partitions=sorted(active))
        self._wake.set()

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        partitions = {tp.partition for tp in revoked if tp.topic == INCIDENT_COMMANDS}
        self.timers.drop_partitions(partitions)
        self.positions.forget(partitions)
        metrics.TIMERS_ARMED.set(len(self.timers))

    async def _timer_loop(self) -> None:
        """Send a `timer.fired` command for every due deadline; sleep until the next one."""
        # Firings are commands sent outside any consumed event (a stale or repeated one is ignored
        # by its token): a plain acks=all idempotent producer of their own, awaited per pass.
        bootstrap, client_id = self.settings.kafka_bootstrap_servers, f"{self.app.conf.id}-timers"
        self._firing = Publisher.owning(lambda: make_producer(bootstrap, client_id))
        await self._firing.start()
        try:
            await self._timer_steps()
        finally:
            await self._firing.stop()

    async def _timer_steps(self) -> None:
        while not self.app.should_stop:
            try:
                for partition in self.positions.overdue_reseeks(time.monotonic()):
                    await self._seek_back(partition)  # the missing command did not come: again
                await self._fire_due()
            except Exception:
                log.exception("timer loop step failed", loop="timers")
                await asyncio.sleep(0.5)
            next_due = self.timers.next_due()
            delay = MAX_TIMER_SLEEP if next_due is None else min(MAX_TIMER_SLEEP, max(0.0, next_due - time.time()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _fire_due(self) -> None:
        now = time.time()
        due = self.timers.pop_due(now)
        if not due:
            return
        publisher = self._firing
        sends = []
        for timer in due:
            fired = ev.TimerFired(token=timer.token, due_at=datetime.fromtimestamp(timer.due_at, UTC))
            raw = self.table.get(timer.key)
            env = new_envelope(
                ev.TIMER_FIRED,
                fired,
                incident_key=timer.key,
                occurred_at=datetime.now(UTC),
                incident_id=StateCodec.incident_id(raw) if raw is not None else None,
            )
            sends.append(publisher.publish(INCIDENT_COMMANDS, env))
            metrics.TIMER_LATENESS.observe(max(0.0, now - timer.due_at))
        # All firings of one pass in flight together; a failure puts every one back to retry.
        results = await asyncio.gather(*sends, return_exceptions=True)
        failed = [t for t, r in zip(due, results, strict=True) if isinstance(r, BaseException)]
        for timer in failed:
            self.timers.restore(timer)
        metrics.TIMERS_ARMED.set(len(self.timers))
        if failed:
            raise RuntimeError(f"{len(failed)} timer firings not acknowledged; they will be retried")

    # --- HTTP ---------------------------------------------------------------------------------

    def _register_views(self) -> None:
        escalator = self

        @self.app.page("/healthz")
        class Health(View):
            async def get(self, request: Request) -> Response:
                app = escalator.app
                recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
                ready = not app.rebalancing and recovery.completed.is_set()
                body = {"status": "ok" if ready else "starting", "timers": len(escalator.timers)}
                return self.json(body, status=200 if ready else 503)

        @self.app.page("/metrics")
        class Metrics(View):
            async def get(self, request: Request) -> Response:
                # aiohttp takes the charset separately from the content type.
                return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4")

        del Health, Metrics
