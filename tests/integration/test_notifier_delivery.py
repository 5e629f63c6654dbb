"""The notifier's delivery of a step through the directory and real channels: who is on call at the
step's instant gets each of their contact methods once; a level that reaches nobody is recorded and
escalated to the next level; a delayed notification rule waits and is dropped on acknowledgement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from services.notifier.app import build_channels
from services.notifier.channels.http import HttpPoster
from services.notifier.channels.templates import Templates
from services.notifier.delivery import Deliverer, Throttle
from services.notifier.directory.model import (
    ContactMethod,
    Directory,
    NotificationRule,
    Rotation,
    Schedule,
    Team,
    User,
)
from services.notifier.ledger import DeliveredLedger
from services.notifier.pending import Pending, PendingSend
from services.webhook_receiver import WebhookReceiver
from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.kafka import Publisher, ensure_topics, make_producer
from shared.settings import NotifierSettings
from shared.topics import NOTIFICATION_RESULTS
from tests.integration.smtp_server import Mailbox
from tests.support import eventually

pytestmark = pytest.mark.integration

# Monday 2026-03-02 09:00 Berlin: bob hands off to alice; she hands back a week later.
HANDOFF = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _directory(hook: str, *, empty_schedule: bool = False) -> Directory:
    alice = User(
        id="alice",
        contact_methods=(
            ContactMethod(type="webhook", address=f"{hook}/alice"),
            ContactMethod(type="email", address="alice@example.com"),
            ContactMethod(type="email", address="alice-pager@example.com", name="pager"),
        ),
        notification_rules=(
            NotificationRule(urgency="high", contact="webhook"),
            NotificationRule(urgency="high", contact="email"),
            NotificationRule(urgency="high", contact="pager", delay=timedelta(minutes=10)),
        ),
    )
    bob = User(id="bob", contact_methods=(ContactMethod(type="webhook", address=f"{hook}/bob"),))
    # bob's week from Monday 2026-02-23 09:00 Berlin, alice's from the next Monday, and so on.
    turns = () if empty_schedule else ("bob", "alice")
    weekly = Rotation(type="weekly", start=datetime(2026, 2, 23, 9, 0), participants=turns)
    return Directory(
        users={"alice": alice, "bob": bob},
        teams={"infra": Team(id="infra", members=("alice", "bob"), schedule="infra-on-call")},
        schedules={"infra-on-call": Schedule(id="infra-on-call", time_zone="Europe/Berlin", layers=(weekly,))},
    )


def _step(at: datetime, target: ev.Target, level: int = 1) -> Envelope:
    incident = uuid.uuid4()
    step = ev.EscalationStepReached(
        step_id=uuid.uuid4(),
        level=level,
        cycle=0,
        level_name="infrastructure",
        kind="functional",
        reason="timeout",
        targets=[target],
        service="checkout",
        summary="Checkout down",
        severity=ev.Severity.CRITICAL,
        priority="P1",
        policy_id="p",
        due_at=at,
    )
    return new_envelope(
        ev.ESCALATION_STEP_REACHED, step, incident_key="checkout/down", occurred_at=at, incident_id=incident
    )


class Recorder:
    """The deliverer's two outputs as the notifier wires them to Kafka: results and escalations."""

    def __init__(self) -> None:
        self.results: list[Envelope] = []
        self.escalations: list[Envelope] = []

    async def report(self, env: Envelope) -> None:
        self.results.append(env)

    async def escalate(self, env: Envelope) -> None:
        self.escalations.append(env)


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def _deliverer(http: HttpPoster, directory: Directory, smtp_port: int, recorder: Recorder) -> Deliverer:
    settings = NotifierSettings(notifier_smtp_host="127.0.0.1", notifier_smtp_port=smtp_port)
    return Deliverer(
        build_channels(settings, http, Templates()),
        recorder.report,
        max_attempts=2,
        backoff_base=0.01,
        escalate=recorder.escalate,
        directory=directory,
    )


async def test_the_person_on_call_at_the_step_gets_each_contact_method_once(
    hook: WebhookReceiver, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    recorder = Recorder()
    async with HttpPoster() as http:
        deliverer = _deliverer(http, _directory(hook.url("people")), port, recorder)
        # Just before the hand-off it is still bob's (previous) week; just after, alice's.
        await deliverer.deliver_step(_step(HANDOFF - timedelta(seconds=1), ev.Target(type="team", id="infra")))
        await deliverer.deliver_step(_step(HANDOFF + timedelta(seconds=1), ev.Target(type="team", id="infra")))
        # That step was reached long ago: alice's pager rule (10 minutes later) is overdue and goes too.
        await mailbox_has(mailbox, 2)

        async def all_reported() -> bool | None:
            return True if sum(r.type == ev.NOTIFICATION_DELIVERED for r in recorder.results) >= 4 else None

        await eventually(all_reported, timeout=10, what="the pager email's result")
    assert [r.path for r in hook.received] == ["/people/bob", "/people/alice"]
    assert sorted(m.rcpt_tos for m in mailbox.mails) == [["alice-pager@example.com"], ["alice@example.com"]]
    delivered = [r.payload for r in recorder.results if r.type == ev.NOTIFICATION_DELIVERED]
    assert sorted(p["channel"] for p in delivered) == ["email", "email", "webhook", "webhook"]
    assert len({p["idempotency_key"] for p in delivered}) == 4
    assert recorder.escalations == []


async def test_a_redelivered_step_carries_the_same_idempotency_keys(
    hook: WebhookReceiver, smtp: tuple[Mailbox, int]
) -> None:
    _, port = smtp
    recorder = Recorder()
    step = _step(HANDOFF + timedelta(hours=1), ev.Target(type="schedule", id="infra-on-call"))
    async with HttpPoster() as http:
        deliverer = _deliverer(http, _directory(hook.url("people")), port, recorder)
        await deliverer.deliver_step(step)
        await deliverer.deliver_step(step)
        await deliverer.settle(step)
    keys = [r.headers["Idempotency-Key"] for r in hook.received]
    assert len(keys) == 2
    assert keys[0] == keys[1]  # a receiver that dedupes by key pages once


async def test_a_level_that_reaches_nobody_is_recorded_and_escalated(
    hook: WebhookReceiver, smtp: tuple[Mailbox, int]
) -> None:
    _, port = smtp
    recorder = Recorder()
    step = _step(HANDOFF, ev.Target(type="schedule", id="infra-on-call"), level=2)
    async with HttpPoster() as http:
        deliverer = _deliverer(http, _directory(hook.url("people"), empty_schedule=True), port, recorder)
        await deliverer.deliver_step(step)
    assert hook.received == []
    [failed] = recorder.results
    assert failed.type == ev.NOTIFICATION_FAILED
    assert "has nobody on call" in failed.payload["error"]
    assert failed.payload["final"] is True
    [order] = recorder.escalations
    assert order.type == ev.ESCALATE
    assert order.incident_id == step.incident_id
    assert order.causation_id == step.event_id
    assert (order.payload["to_level"], order.payload["actor"]) == (3, "notifier")
    # The same step again gives the same order id: the audit shows one escalation, not two.
    async with HttpPoster() as http:
        again = Recorder()
        deliverer = _deliverer(http, _directory(hook.url("people"), empty_schedule=True), port, again)
        await deliverer.deliver_step(step)
    assert again.escalations[0].event_id == order.event_id


async def test_a_delayed_rule_is_sent_after_its_delay_unless_the_incident_is_settled(
    hook: WebhookReceiver, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    recorder = Recorder()
    now = datetime.now(UTC)
    async with HttpPoster() as http:
        deliverer = _deliverer(http, _directory(hook.url("people")), port, recorder)
        # A user target pages alice whoever is on call; her pager rule waits 10 minutes: a step
        # reached 10 minutes ago is due for it now.
        reached = now - timedelta(minutes=10)
        overdue = _step(reached, ev.Target(type="user", id="alice"))
        await deliverer.deliver_step(overdue)
        await mailbox_has(mailbox, 2)
        waiting = _step(datetime.now(UTC), ev.Target(type="user", id="alice"))
        await deliverer.deliver_step(waiting)
        await deliverer.settle(waiting)
    pager = [m for m in mailbox.mails if m.rcpt_tos == ["alice-pager@example.com"]]
    assert len(pager) == 1  # the overdue step's; the settled one's never went out
    assert pager[0].message["Subject"] is not None


async def test_a_step_read_while_catching_up_defers_even_its_immediate_sends(
    hook: WebhookReceiver, smtp: tuple[Mailbox, int]
) -> None:
    """Read again after a crash, a step may belong to an incident settled by a later event: nothing
    goes out from the loop, every send waits on the pending topic (where that settle drops it)."""
    mailbox, port = smtp
    recorder = Recorder()
    deferred: list[Pending] = []

    async def defer(record: Pending) -> None:
        deferred.append(record)

    settings = NotifierSettings(notifier_smtp_host="127.0.0.1", notifier_smtp_port=port)
    reached = datetime.now(UTC) - timedelta(minutes=10)
    step = _step(reached, ev.Target(type="user", id="alice"))
    async with HttpPoster() as http:
        channels = build_channels(settings, http, Templates())
        deliverer = Deliverer(channels, recorder.report, 2, 0.01, directory=_directory(hook.url("people")), defer=defer)
        await deliverer.deliver_step(step, catching_up=True)
        assert hook.received == []
        assert mailbox.mails == []
        assert recorder.results == []
        sends = [r for r in deferred if isinstance(r, PendingSend)]
        # alice's webhook and email now, her pager email 10 minutes after the step: all deferred, first attempts.
        assert sorted((s.send.channel, s.send.address, s.not_before - reached) for s in sends) == [
            ("email", "alice-pager@example.com", timedelta(minutes=10)),
            ("email", "alice@example.com", timedelta(0)),
            ("webhook", hook.url("people/alice"), timedelta(0)),
        ]
        assert {s.attempt for s in sends} == {1}
        deferred.clear()
        await deliverer.deliver_step(step)  # the same step not catching up: the immediate ones go out
        await mailbox_has(mailbox, 1)
    assert [r.path for r in hook.received] == ["/people/alice"]
    assert [s.send.address for s in deferred if isinstance(s, PendingSend)] == ["alice-pager@example.com"]


async def mailbox_has(mailbox: Mailbox, count: int) -> None:
    """Wait for the SMTP server to have accepted `count` messages (its own event, not a sleep)."""

    async def enough() -> bool | None:
        return True if len(mailbox.mails) >= count else None

    await eventually(enough, timeout=10, what=f"{count} emails")


class Outage(WebhookReceiver):
    """A receiver that answers 503 (and records nothing) until `restored` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.restored = asyncio.Event()
        self.refusals = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if not self.restored.is_set():
            self.refusals += 1
            return web.Response(status=503)
        return await super()._handle(request)


OUTAGE_SECONDS = 30.0
BURST = 40


async def test_a_receiver_down_for_30_s_gets_every_escalation_of_a_burst_exactly_once() -> None:
    receiver = Outage()
    await receiver.start()
    recorder = Recorder()
    steps = [_step(datetime.now(UTC), ev.Target(type="webhook", url=receiver.url(f"burst/{i}"))) for i in range(BURST)]
    try:
        async with HttpPoster() as http:
            deliverer = Deliverer(
                build_channels(NotifierSettings(), http, Templates()),
                recorder.report,
                max_attempts=100,
                backoff_base=0.2,
                backoff_max=2.0,
            )
            burst = asyncio.gather(*(deliverer.deliver_step(s) for s in steps))
            loop = asyncio.get_running_loop()
            loop.call_later(OUTAGE_SECONDS, receiver.restored.set)  # the receiver comes back
            await burst
    finally:
        await receiver.stop()
    assert receiver.refusals >= BURST  # every step met the outage
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert len(keys) == BURST
    assert len(set(keys)) == BURST  # exactly once each
    delivered = [r for r in recorder.results if r.type == ev.NOTIFICATION_DELIVERED]
    assert len(delivered) == BURST
    assert all(r.payload["attempt"] > 1 for r in delivered)


async def test_a_delivery_recorded_in_kafka_is_not_sent_again_by_a_new_notifier(
    kafka_bootstrap: str, hook: WebhookReceiver
) -> None:
    """What a restarted (or rebalanced) notifier knows: the delivered results on notifications.results."""
    await ensure_topics(kafka_bootstrap, 8)
    step = _step(datetime.now(UTC), ev.Target(type="webhook", url=hook.url("ledger")))
    producer = make_producer(kafka_bootstrap, "it-ledger")
    await producer.start()
    publisher = Publisher(producer)

    async def to_kafka(env: Envelope) -> None:
        await publisher.publish(NOTIFICATION_RESULTS, env)

    try:
        async with HttpPoster() as http:
            first = Deliverer(build_channels(NotifierSettings(), http, Templates()), to_kafka, 3, 0.01)
            await first.deliver_step(step)  # the "crashed" notifier delivered, reported, never committed
            assert len(hook.received) == 1
            ledger = DeliveredLedger(kafka_bootstrap)
            ledger.start()
            try:
                await asyncio.wait_for(ledger.ready.wait(), timeout=60)
                again = Recorder()
                second = Deliverer(
                    build_channels(NotifierSettings(), http, Templates()), again.report, 3, 0.01, ledger=ledger
                )
                await second.deliver_step(step)  # the redelivered step
            finally:
                await ledger.stop()
    finally:
        await producer.stop()
    assert len(hook.received) == 1
    assert again.results == []


async def test_the_ledger_syncs_with_results_another_notifier_just_wrote(kafka_bootstrap: str) -> None:
    """A notifier taking partitions over asks its ledger to sync before it tries any page again: what
    the previous owner recorded up to that moment is known, though the ledger reads in batches."""
    await ensure_topics(kafka_bootstrap, 8)
    ledger = DeliveredLedger(kafka_bootstrap)
    ledger.start()
    producer = make_producer(kafka_bootstrap, "it-ledger-sync")
    await producer.start()
    try:
        await asyncio.wait_for(ledger.ready.wait(), timeout=60)
        publisher = Publisher(producer)
        keys = []
        for i in range(20):
            step = _step(datetime.now(UTC), ev.Target(type="webhook", url=f"http://127.0.0.1:9/{i}"))
            result = ev.NotificationResult(
                step_id=step.payload["step_id"],
                idempotency_key=uuid.uuid4(),
                channel="webhook",
                target=ev.Target(type="webhook", url=f"http://127.0.0.1:9/{i}"),
                attempt=1,
                status_code=200,
                final=True,
            )
            keys.append(str(result.idempotency_key))
            env = new_envelope(
                ev.NOTIFICATION_DELIVERED,
                result,
                incident_key=step.incident_key,
                occurred_at=datetime.now(UTC),
                incident_id=step.incident_id,
                cause=step,
            )
            await publisher.publish(NOTIFICATION_RESULTS, env)  # acknowledged by the broker
        await asyncio.wait_for(ledger.sync(), timeout=30)
        assert [k for k in keys if k not in ledger] == []
    finally:
        await producer.stop()
        await ledger.stop()


async def test_sends_to_one_address_over_its_rate_wait_their_turn_and_none_is_dropped(hook: WebhookReceiver) -> None:
    rate, burst, sends = 5.0, 10, 15  # the address's bucket holds twice its rate per second
    recorder = Recorder()
    steps = [_step(datetime.now(UTC), ev.Target(type="webhook", url=hook.url("slow"))) for _ in range(sends)]
    async with HttpPoster() as http:
        deliverer = Deliverer(
            build_channels(NotifierSettings(), http, Templates()),
            recorder.report,
            3,
            0.01,
            throttle=Throttle(channel_rate=1000, target_rate=rate),
        )
        started = asyncio.get_running_loop().time()  # the receiver stamps arrivals with the same clock
        await asyncio.gather(*(deliverer.deliver_step(s) for s in steps))
    arrivals = sorted(r.at for r in hook.received)
    assert len(arrivals) == sends
    # A lower bound, not a speed target: the 5 sends past the burst wait 1/rate each for tokens.
    assert arrivals[-1] - started >= (sends - burst) / rate - 0.05
