"""Deliver one escalation step to each of its targets, with retries, and report every attempt."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter

from services.notifier.channels.base import Channel, notification_of
from services.notifier.directory.model import Directory
from services.notifier.ledger import DeliveredLedger
from services.notifier.outcome import DeliveryOutcome
from services.notifier.pending import Pending, PendingSend, Settled
from services.notifier.routing import Plan, Unreached, plan_step
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.ids import derived_id, derived_uuid7, uuid7_unix_ms
from shared.key_locks import KeyLocks
from shared.links import LinkSigner
from shared.logging import get_logger
from shared.ratelimit import TokenBuckets

log = get_logger("notifier")

ATTEMPTS = Counter("notifier_attempts_total", "Delivery attempts, by channel and outcome", ["channel", "outcome"])
THROTTLED = Counter("notifier_throttled_total", "Sends held back by a channel or address rate limit", ["channel"])
SKIPPED = Counter("notifier_already_delivered_total", "Notifications not sent again: their key was delivered before")
DEFERRED = Counter("notifier_deferred_total", "Deliveries written to wait for a delay or a retry", ["why"])

Report = Callable[[Envelope], Awaitable[None]]
Defer = Callable[[Pending], Awaitable[None]]


def idempotency_key(step_id: object, target: ev.Target, channel: str) -> str:
    """Return the deterministic key of (step, target, channel): one page per step and target."""
    return str(derived_id("notification", step_id, target.type, target.id, target.url, channel))


def webhook_body(env: Envelope, step: ev.EscalationStepReached, target: ev.Target, key: str) -> dict[str, Any]:
    """Return the JSON a webhook receiver gets."""
    return {
        "type": env.type,
        "event_id": str(env.event_id),
        "incident_id": str(env.incident_id) if env.incident_id else None,
        "incident_key": env.incident_key,
        "occurred_at": env.occurred_at.isoformat(),
        "step_id": str(step.step_id),
        "level": step.level,
        "cycle": step.cycle,
        "service": step.service,
        "summary": step.summary,
        "severity": step.severity.value,
        "target": target.label,
        "level_name": step.level_name,
        "kind": step.kind,
        "priority": step.priority,
        "reason": step.reason,
        "idempotency_key": key,
    }


Escalate = Callable[[Envelope], Awaitable[None]]


class Throttle:
    """Per-channel and per-address rate limits: a send over either waits for its turn (never dropped)."""

    def __init__(self, channel_rate: float, target_rate: float) -> None:
        self._channels = TokenBuckets(channel_rate, max(1.0, channel_rate))
        self._targets = TokenBuckets(target_rate, max(1.0, 2 * target_rate))
        self._queues = KeyLocks()  # the sends waiting for one address, in the order they came

    def wait(self, channel: str, address: str) -> float | None:
        """None when one more send on `channel` to `address` is within both limits (and counted it), else
        the seconds until it may be."""
        now = time.monotonic()
        wait = self._channels.take(channel, now)
        if wait is None:
            wait = self._targets.take(f"{channel}:{address}", now)
            if wait is not None:
                self._channels.refund(channel)
        return wait

    async def turn(self, channel: str, address: str) -> None:
        """Return when one more send on `channel` to `address` is within both limits.

        The sends held back for one address queue in order, and only the first of them looks at the
        buckets. Before, each of them slept until the next token and all woke together: a storm of
        N pages to one throttled webhook cost N wakeups a token (a notifier with nothing but a
        backlog of retries for closed receivers used 0.75 cores; queued, 0.36).
        """
        THROTTLED.labels(channel).inc()
        async with self._queues.hold(f"{channel}:{address}"):
            wait = self.wait(channel, address)
            while wait is not None:
                await asyncio.sleep(wait)  # the bucket's refill time, not a guess
                wait = self.wait(channel, address)


def reached_at(env: Envelope, step: ev.EscalationStepReached) -> datetime:
    """The instant the level was reached (the policy's), else when the step was decided."""
    return step.due_at or env.occurred_at


class Deliverer:
    """Plans each step's deliveries (directory, on-call, notification rules), sends them through
    their channels, and reports every attempt.

    A delivery that must wait (a rule's delay, the backoff before a retry) is handed to `defer`:
    the notifier writes it to `notifications.pending` and attempts it when due (crash-safe, and a
    failing receiver holds up nobody else). Without `defer` it waits in a task of this process.
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        report: Report,
        max_attempts: int,
        backoff_base: float,
        *,
        escalate: Escalate | None = None,
        exhausted: Report | None = None,
        directory: Directory | None = None,
        links: LinkSigner | None = None,
        ledger: DeliveredLedger | None = None,
        backoff_max: float = 30.0,
        throttle: Throttle | None = None,
        defer: Defer | None = None,
    ) -> None:
        self._throttle = throttle
        self._channels = dict(channels)
        self._exhausted = exhausted
        self._ledger = ledger
        self._backoff_max = backoff_max
        self._report = report
        self._escalate = escalate
        self._directory = directory
        self._links = links
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._defer = defer
        self._keys = KeyLocks()  # one attempt of a notification at a time: the ledger decides the next
        self._later: dict[uuid.UUID, set[asyncio.Task[None]]] = {}

    async def deliver_step(self, env: Envelope, *, catching_up: bool = False) -> None:
        """Deliver an `escalation.step_reached` event: now-due sends concurrently, delayed ones deferred.

        `catching_up`: the event may be read again (after a crash or a hand-over) and its incident
        settled by a later event not handled yet: every send is deferred, and fires only once those
        later events are handled (their settle drops it)."""
        step = env.payload_as(ev.EscalationStepReached)
        at = reached_at(env, step)
        plan = plan_step(self._directory, step, at)
        for miss in plan.unreached:
            await self._report_unreached(env, step, miss)
        if plan.nobody:
            await self._escalate_past(env, step, plan)
        # The waits are written first: once a first attempt is reported, its step's waits are in Kafka.
        for send in (s for s in plan.sends if s.delay):
            await self._wait(PendingSend(env, send, 1, at + send.delay), "delay")
        now = [PendingSend(env, s, 1, at) for s in plan.sends if not s.delay]
        if catching_up and self._defer is not None:
            for item in now:
                await self._wait(item, "catch-up")
            return
        await asyncio.gather(*(self.attempt(item) for item in now))

    async def settle(self, env: Envelope) -> None:
        """The incident of `env` was acknowledged or resolved: its deliveries still waiting are dropped."""
        if env.incident_id is None:
            return
        for task in self._later.pop(env.incident_id, set()):
            task.cancel()
        if self._defer is not None:
            await self._defer(Settled(env.incident_id, env.incident_key, env.occurred_at))

    async def attempt(self, item: PendingSend) -> None:
        """Attempt a delivery; a retryable failure defers the next attempt (without `defer`: retries here)."""
        retry = await self._attempt_once(item)
        while retry is not None:
            DEFERRED.labels("retry").inc()
            if self._defer is not None:
                await self._defer(retry)
                return
            await asyncio.sleep(max(0.0, (retry.not_before - datetime.now(UTC)).total_seconds()))
            retry = await self._attempt_once(retry)

    async def _wait(self, item: PendingSend, why: str) -> None:
        """A delivery that waits for its rule's delay: deferred, or a task here that settle() cancels."""
        DEFERRED.labels(why).inc()
        if self._defer is not None:
            await self._defer(item)
            return
        task = asyncio.create_task(self._in_process(item), name=f"notify-later-{item.send.recipient}")
        if item.incident_id is not None:
            pending = self._later.setdefault(item.incident_id, set())
            pending.add(task)
            task.add_done_callback(pending.discard)

    async def _in_process(self, item: PendingSend) -> None:
        wait = (item.not_before - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)  # a rule's delay or a backoff; cancelled by settle()
        await self.attempt(item)

    async def _report_unreached(self, env: Envelope, step: ev.EscalationStepReached, miss: Unreached) -> None:
        ATTEMPTS.labels("directory", "unreached").inc()
        key = idempotency_key(step.step_id, miss.target, "directory")
        result = ev.NotificationResult(
            step_id=step.step_id,
            idempotency_key=uuid.UUID(key),
            channel="directory",
            target=miss.target,
            attempt=1,
            error=miss.reason,
            final=True,
        )
        log.warning("target reaches nobody", reason=miss.reason, incident_id=str(env.incident_id))
        await self._report(self._result_envelope(env, ev.NOTIFICATION_FAILED, result))

    async def _escalate_past(self, env: Envelope, step: ev.EscalationStepReached, plan: Plan) -> None:
        """Nobody at this level can be paged: ask the escalator for the next level at once."""
        if self._escalate is None:
            return
        service, _, dedup = env.incident_key.partition("/")
        order = ev.EscalateNow(service=service, dedup_key=dedup, actor="notifier", to_level=step.level + 1)
        command = new_envelope(
            ev.ESCALATE,
            order,
            incident_key=env.incident_key,
            occurred_at=datetime.now(UTC),
            incident_id=env.incident_id,
            cause=env,
            # The same id for a redelivered step: the audit shows one order, not two.
            event_id=derived_uuid7(uuid7_unix_ms(env.event_id), env.event_id, "escalate-past"),
        )
        log.warning(
            "level reaches nobody; escalating",
            level=step.level,
            reasons=[m.reason for m in plan.unreached],
            incident_id=str(env.incident_id),
            event_id=str(command.event_id),
        )
        await self._escalate(command)

    def _result_envelope(self, env: Envelope, kind: str, result: ev.NotificationResult) -> Envelope:
        return new_envelope(
            kind,
            result,
            incident_key=env.incident_key,
            occurred_at=datetime.now(UTC),
            incident_id=env.incident_id,
            cause=env,
        )

    async def _attempt_once(self, item: PendingSend) -> PendingSend | None:
        """One attempt and its reported outcome; the next attempt when this one may be retried."""
        key = item.key
        async with self._keys.hold(key):
            return await self._attempt_held(item, key)

    async def _attempt_held(self, item: PendingSend, key: str) -> PendingSend | None:
        env, send, attempt = item.step, item.send, item.attempt
        step = item.reached
        if self._ledger is not None and key in self._ledger:
            SKIPPED.inc()
            log.info("already delivered; not sent again", idempotency_key=key, incident_id=str(env.incident_id))
            return None
        note = notification_of(env, step, send.target, key, self._links, recipient=send.recipient)
        channel = self._channels.get(send.channel)
        if channel is None:
            outcome = DeliveryOutcome(False, False, error=f"no {send.channel} channel is configured")
        else:
            if self._throttle is not None and self._throttle.wait(send.channel, send.address) is not None:
                await self._throttle.turn(send.channel, send.address)  # over a limit: wait for the turn
            outcome = await channel.send(send.address, note)
        final = outcome.delivered or not outcome.retryable or attempt >= self._max_attempts
        ATTEMPTS.labels(send.channel, "delivered" if outcome.delivered else "failed").inc()
        result = ev.NotificationResult(
            step_id=step.step_id,
            idempotency_key=uuid.UUID(key),
            channel=send.channel,
            target=send.target,
            attempt=attempt,
            status_code=outcome.status_code,
            error=outcome.error,
            final=final,
        )
        kind = ev.NOTIFICATION_DELIVERED if outcome.delivered else ev.NOTIFICATION_FAILED
        if outcome.delivered and self._ledger is not None:
            self._ledger.add(key)
        reported = self._result_envelope(env, kind, result)
        await self._report(reported)
        if final and not outcome.delivered and outcome.retryable and self._exhausted is not None:
            await self._exhausted(reported)  # retries exhausted: parked with the reason
        log.info(
            "delivery attempt",
            outcome=kind,
            channel=send.channel,
            recipient=send.recipient,
            attempt=attempt,
            incident_id=str(env.incident_id),
            event_id=str(env.event_id),
            step_id=str(step.step_id),
            status_code=outcome.status_code,
        )
        if final:
            return None
        delay = min(self._backoff_base * (2 ** (attempt - 1)), self._backoff_max)
        jittered = delay * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not crypto
        return item.retry(datetime.now(UTC) + timedelta(seconds=jittered))
