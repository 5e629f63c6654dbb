"""The owning Publisher replaces a producer whose idempotence state is broken, and only then.

The producers here are stand-ins recording what the Publisher asks of them: the subject is the
Publisher's renewal rule, not Kafka (the outage integration test drives a real broker into it).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber, UnknownProducerId

from shared import events as ev
from shared.envelope import Envelope, new_envelope
from shared.kafka import Publisher, PublishError


class StandInProducer:
    """Fails every send with `error` (if any); records sends, starts and stops."""

    def __init__(self, error: Exception | None = None, start_error: Exception | None = None) -> None:
        self.error = error
        self.start_error = start_error
        self.sent: list[bytes] = []
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, value: bytes, **_: Any) -> None:
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        self.sent.append(value)

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            future.set_exception(self.error)
        else:
            self.sent.append(value)
            future.set_result(None)
        return future


def _envelope(n: int = 0) -> Envelope:
    return new_envelope(
        ev.TRIGGER,
        ev.Trigger(service="svc", dedup_key=f"k{n}", summary="s"),
        incident_key=f"svc/k{n}",
        occurred_at=datetime.now(UTC),
    )


def _owning(*producers: StandInProducer) -> tuple[Publisher, list[StandInProducer]]:
    made: list[StandInProducer] = []
    queue = list(producers)

    def factory() -> Any:
        made.append(queue.pop(0))
        return made[-1]

    return Publisher.owning(factory), made


@pytest.mark.parametrize("error", [OutOfOrderSequenceNumber(), UnknownProducerId()])
async def test_a_producer_state_error_fails_the_send_and_replaces_the_producer(error: Exception) -> None:
    publisher, made = _owning(StandInProducer(error=error), StandInProducer())
    await publisher.start()
    with pytest.raises(PublishError):
        await publisher.publish("t", _envelope())
    assert publisher.renewals == 1
    assert made[1].started
    await publisher.publish("t", _envelope())
    assert len(made[1].sent) == 1
    await publisher.stop()
    assert made[0].stopped
    assert made[1].stopped


async def test_other_kafka_errors_keep_the_producer() -> None:
    publisher, made = _owning(StandInProducer(error=KafkaTimeoutError()))
    await publisher.start()
    for _ in range(3):
        with pytest.raises(PublishError):
            await publisher.publish("t", _envelope())
    assert publisher.renewals == 0
    assert len(made) == 1


async def test_concurrent_failures_renew_once() -> None:
    publisher, made = _owning(StandInProducer(error=OutOfOrderSequenceNumber()), StandInProducer())
    await publisher.start()
    results = await asyncio.gather(*(publisher.publish("t", _envelope(i)) for i in range(10)), return_exceptions=True)
    assert all(isinstance(r, PublishError) for r in results)
    assert publisher.renewals == 1
    assert len(made) == 2


async def test_a_batch_with_a_state_error_renews_and_reports_each_message() -> None:
    publisher, made = _owning(StandInProducer(error=OutOfOrderSequenceNumber()), StandInProducer())
    await publisher.start()
    results = await publisher.publish_many("t", [_envelope(i) for i in range(4)])
    assert all(isinstance(r, PublishError) and isinstance(r.__cause__, OutOfOrderSequenceNumber) for r in results)
    assert publisher.renewals == 1
    assert await publisher.publish_many("t", [_envelope(i) for i in range(4)]) == [None] * 4
    assert len(made[1].sent) == 4


async def test_a_replacement_that_cannot_start_keeps_the_old_producer_for_the_next_try() -> None:
    publisher, made = _owning(
        StandInProducer(error=OutOfOrderSequenceNumber()),
        StandInProducer(start_error=KafkaTimeoutError()),
        StandInProducer(),
    )
    await publisher.start()
    with pytest.raises(PublishError):
        await publisher.publish("t", _envelope())
    assert publisher.renewals == 0
    assert publisher.producer is made[0]
    with pytest.raises(PublishError):
        await publisher.publish("t", _envelope())
    assert publisher.renewals == 1
    assert publisher.producer is made[2]


async def test_a_publisher_on_a_callers_producer_never_replaces_it() -> None:
    producer = StandInProducer(error=OutOfOrderSequenceNumber())
    publisher = Publisher(producer)
    with pytest.raises(PublishError):
        await publisher.publish("t", _envelope())
    assert publisher.producer is producer
    assert publisher.renewals == 0
