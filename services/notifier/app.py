"""Notifier service: consumes escalation events, delivers them, publishes every outcome."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from services.notifier.channels.base import Channel
from services.notifier.channels.email import EmailChannel, SmtpSettings
from services.notifier.channels.links import LinkSigner
from services.notifier.channels.opsgenie import OpsgenieChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.templates import Templates
from services.notifier.channels.webhook import SignedWebhookChannel
from services.notifier.delivery import Deliverer, Throttle
from services.notifier.directory.loader import load_directory
from services.notifier.ledger import DeliveredLedger
from shared import events as ev
from shared.envelope import Envelope, EnvelopeError, decode
from shared.http import install_problem_handlers, ops_router
from shared.kafka import Publisher, PublishError, ensure_topics, make_producer
from shared.logging import get_logger
from shared.settings import NotifierSettings
from shared.topics import ESCALATION_EVENTS, INCIDENT_COMMANDS, NOTIFICATION_RESULTS, dead_letter_topic

log = get_logger("notifier")
GROUP = "notifier"
BATCH = 500  # escalation events read, delivered concurrently and committed together
CONNECTIONS = 100  # pooled HTTP connections, all kept alive (httpx keeps 20 by default)


class NotifierWorker:
    """Consume-deliver-commit loop: offsets are committed only after the deliveries finished."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.running = False

    async def start(self) -> None:
        """Create topics, connect, and start the loop (clients need the running event loop)."""
        settings = self.settings
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions)
        self.publisher = Publisher.owning(lambda: make_producer(settings.kafka_bootstrap_servers, "notifier"))
        self.consumer = AIOKafkaConsumer(
            ESCALATION_EVENTS,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=GROUP,
            client_id="notifier",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), limits=limits)
        self.ledger = DeliveredLedger(settings.kafka_bootstrap_servers)
        links = None
        if settings.notifier_link_secret is not None:
            links = LinkSigner(
                settings.notifier_link_secret.get_secret_value().encode(),
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
        )
        await self.publisher.start()
        await self.consumer.start()
        self.ledger.start()
        self._task = asyncio.create_task(self._run(), name="notifier-loop")
        self.running = True

    async def _report(self, env: Envelope) -> None:
        await self.publisher.publish(NOTIFICATION_RESULTS, env)

    async def _escalate(self, command: Envelope) -> None:
        await self.publisher.publish(INCIDENT_COMMANDS, command)

    async def _park(self, failed: Envelope) -> None:
        """A delivery that exhausted its retries: its last failed result, with the reason, is dead-lettered."""
        await self.publisher.publish(dead_letter_topic(GROUP), failed)

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, and close (graceful SIGTERM)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        await self.consumer.stop()
        await self.ledger.stop()
        await self.publisher.stop()
        await self.http.aclose()
        self.running = False

    async def _run(self) -> None:
        # Nothing is sent before the ledger knows what was delivered before (a restart's redeliveries).
        while not self.ledger.ready.is_set() and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ledger.ready.wait(), timeout=0.5)
        while not self._stopping.is_set():
            try:
                batches = await self.consumer.getmany(timeout_ms=200, max_records=BATCH)
                # The batch's steps are delivered concurrently (one slow or failing receiver does not
                # hold up the others), then its offsets are committed together.
                results = await asyncio.gather(
                    *(
                        self._handle(record.topic, record.partition, record.offset, record.key, record.value)
                        for records in batches.values()
                        for record in records
                    ),
                    return_exceptions=True,
                )
                failure = next((r for r in results if isinstance(r, BaseException)), None)
                if failure is not None:
                    raise failure
                if batches:
                    await self.consumer.commit()
            except (KafkaError, PublishError):
                # Nothing of this batch is committed: go back and redo it (receivers dedupe by key).
                log.exception("notifier loop step failed", loop="notifier")
                await asyncio.sleep(1.0)
                try:
                    await self.consumer.seek_to_committed()
                except KafkaError:
                    log.exception("seek to committed offsets failed", loop="notifier")

    async def _handle(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        try:
            env = decode(value)
        except EnvelopeError as exc:
            log.warning("unreadable event dead-lettered", reason=str(exc), partition=partition, offset=offset)
            await self.publisher.dead_letter(
                GROUP, topic=topic, partition=partition, offset=offset, key=key, value=value, reason=str(exc)
            )
            return
        if env.type == ev.ESCALATION_STEP_REACHED:
            await self.deliverer.deliver_step(env)
        elif env.type in (ev.INCIDENT_ACKNOWLEDGED, ev.INCIDENT_RESOLVED):
            self.deliverer.settle(env.incident_id)


def build_channels(settings: NotifierSettings, http: httpx.AsyncClient, templates: Templates) -> dict[str, Channel]:
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


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    """Build the notifier's ASGI app; the worker runs in its lifespan."""
    settings = settings or NotifierSettings()
    worker = NotifierWorker(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await worker.start()
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
