"""The deferred deliveries' bookkeeping: due order, superseded attempts, settled incidents, and the
offset a restart resumes from (never past a delivery not yet attempted)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier.holding import Holding
from services.notifier.pending import (
    PendingError,
    PendingSend,
    Settled,
    decode_pending,
    encode,
    incident_key_of,
)
from services.notifier.routing import Send
from shared import events as ev
from shared.envelope import Envelope, new_envelope

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _step(incident: uuid.UUID | None = None, key: str = "checkout/down") -> Envelope:
    step = ev.EscalationStepReached(
        step_id=uuid.uuid4(),
        level=1,
        cycle=0,
        targets=[ev.Target(type="user", id="alice")],
        service="checkout",
        summary="Checkout down",
        severity=ev.Severity.CRITICAL,
        policy_id="p",
    )
    return new_envelope(
        ev.ESCALATION_STEP_REACHED, step, incident_key=key, occurred_at=T0, incident_id=incident or uuid.uuid4()
    )


def _send(address: str = "alice@example.com") -> Send:
    return Send(ev.Target(type="user", id="alice"), "email", address, "alice", timedelta(minutes=5))


def _item(step: Envelope, attempt: int = 1, due: float = 0, address: str = "alice@example.com") -> PendingSend:
    return PendingSend(step, _send(address), attempt, T0 + timedelta(seconds=due))


def test_records_round_trip_through_their_json() -> None:
    step = _step()
    item = _item(step, attempt=3, due=12.5)
    back = decode_pending(encode(item))
    assert isinstance(back, PendingSend)
    assert (back.attempt, back.not_before, back.send, back.key) == (3, item.not_before, item.send, item.key)
    assert back.step == step
    settled = Settled(uuid.uuid4(), "checkout/down", T0)
    assert decode_pending(encode(settled)) == settled
    assert incident_key_of(item) == incident_key_of(settled) == "checkout/down"


@pytest.mark.parametrize(
    "value",
    [None, b"", b"[]", b'{"v": 2, "kind": "send"}', b'{"v": 1, "kind": "send"}', b'{"v": 1, "kind": "settled"}'],
)
def test_unreadable_records_are_one_error_with_the_reason(value: bytes | None) -> None:
    with pytest.raises(PendingError):
        decode_pending(value)


def test_nothing_fires_before_the_partition_is_read_to_its_end_at_assignment() -> None:
    holding = Holding()
    holding.assign(0, end=2)
    step = _step()
    holding.take(0, 0, _item(step, attempt=1))
    assert holding.due(T0 + timedelta(hours=1)) == []  # attempt 2 may still be behind it
    holding.take(0, 1, _item(step, attempt=2, due=30))
    fired = holding.due(T0 + timedelta(hours=1))
    assert [(d.offset, d.item.attempt) for d in fired] == [(1, 2)]  # attempt 1 was superseded


def test_a_partition_assigned_without_a_gate_fires_nothing_until_opened_and_read_to_it() -> None:
    """The events read again after a crash write their waits and settles first (`open` follows)."""
    holding = Holding()
    holding.assign(0, end=None)
    holding.advance(0, 0)
    incident = uuid.uuid4()
    holding.take(0, 0, _item(_step(incident)))  # a page of an incident whose settle is still to come
    late = T0 + timedelta(hours=1)
    assert holding.due(late) == []
    assert holding.next_due() is None
    assert not holding.caught_up()
    assert holding.unknown_positions() == [0]
    holding.open(0, 2)  # the topic's end once the events read again are handled
    assert holding.due(late) == []  # the settle at offset 1 is not read yet
    holding.take(0, 1, Settled(incident, "checkout/down", T0))
    assert holding.caught_up()
    assert holding.due(late) == []
    assert holding.commit_offsets() == {0: 2}
    holding.open(0, 9)  # a gate, once set, stays
    holding.take(0, 2, _item(_step()))
    assert [d.offset for d in holding.due(late)] == [2]


def test_due_order_and_commit_offset_stays_before_the_first_open_record() -> None:
    holding = Holding()
    holding.assign(0, end=0)
    early, late = _step(), _step()
    holding.take(0, 0, _item(late, due=60))
    holding.take(0, 1, _item(early, due=10))
    assert holding.commit_offsets() == {0: 0}
    assert holding.next_due() == T0 + timedelta(seconds=10)
    fired = holding.due(T0 + timedelta(seconds=10))
    assert [d.offset for d in fired] == [1]
    assert holding.commit_offsets() == {0: 0}  # offset 0 still waits
    holding.done(0, 1)
    (last,) = holding.due(T0 + timedelta(seconds=60))
    assert holding.commit_offsets() == {0: 0}  # in flight: not attempted yet as far as a restart knows
    holding.done(0, last.offset)
    assert holding.commit_offsets() == {0: 2}


def test_settled_drops_the_incidents_earlier_waits_only() -> None:
    holding = Holding()
    holding.assign(3, end=0)
    incident, other = uuid.uuid4(), uuid.uuid4()
    holding.take(3, 0, _item(_step(incident), due=5))
    holding.take(3, 1, _item(_step(other), due=5))
    void = holding.take(3, 2, Settled(incident, "checkout/down", T0))
    assert [v.incident_id for v in void] == [incident]
    holding.take(3, 3, _item(_step(incident), due=5))  # reopened later: a new step waits again
    fired = holding.due(T0 + timedelta(seconds=5))
    assert sorted(d.offset for d in fired) == [1, 3]


def test_a_revoked_partition_is_forgotten_and_a_requeued_attempt_waits_again() -> None:
    holding = Holding()
    holding.assign(0, end=0)
    holding.assign(1, end=0)
    holding.take(0, 0, _item(_step()))
    holding.take(1, 0, _item(_step()))
    first, _ = sorted(holding.due(T0), key=lambda d: d.partition)
    holding.requeue(first, T0 + timedelta(seconds=1))
    assert holding.due(T0) == []
    assert [d.offset for d in holding.due(T0 + timedelta(seconds=1))] == [0]
    assert holding.revoke(1) == {0}  # its attempt in flight
    assert holding.partitions == frozenset({0})
    assert holding.take(1, 1, _item(_step())) == []  # a late record of a partition no longer ours


def test_a_record_read_again_after_a_seek_is_ignored() -> None:
    holding = Holding()
    holding.assign(0, end=0)
    step = _step()
    holding.take(0, 0, _item(step))
    holding.take(0, 0, _item(step))
    assert len(holding) == 1


def test_unknown_position_commits_nothing_until_told() -> None:
    holding = Holding()
    holding.assign(0, end=7)
    assert holding.commit_offsets() == {}
    assert holding.unknown_positions() == [0]
    holding.advance(0, 7)
    assert holding.commit_offsets() == {0: 7}
    assert holding.unknown_positions() == []


# A stream of operations on one partition: (kind, incident index, seconds). Each incident has one
# notification, so every new record of it supersedes the one still held.
_ops = st.lists(
    st.tuples(st.sampled_from(["write", "settle", "fire", "finish"]), st.integers(0, 3), st.integers(0, 50)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=_ops)
def test_property_only_live_due_records_fire_and_the_commit_stays_before_every_open_one(
    ops: list[tuple[str, int, int]],
) -> None:
    holding = Holding()
    holding.assign(0, end=0)
    holding.advance(0, 0)  # the consumer's position: the partition's start
    incidents = [uuid.uuid4() for _ in range(4)]
    steps = [_step(i) for i in incidents]
    held: dict[int, tuple[int, int]] = {}  # incident index -> (offset, due seconds) of its live record
    inflight: list[int] = []
    offset = 0
    for kind, who, seconds in ops:
        if kind == "write":
            holding.take(0, offset, _item(steps[who], offset + 1, due=seconds))
            held[who] = (offset, seconds)
            offset += 1
        elif kind == "settle":
            holding.take(0, offset, Settled(incidents[who], "checkout/down", T0))
            held.pop(who, None)
            offset += 1
        elif kind == "fire":
            fired = holding.due(T0 + timedelta(seconds=seconds))
            expected = {o for o, due in held.values() if due <= seconds}
            assert {d.offset for d in fired} == expected
            held = {w: (o, d) for w, (o, d) in held.items() if o not in expected}
            inflight.extend(sorted(expected))
        elif inflight:
            holding.done(0, inflight.pop(0))
        still = {o for o, _ in held.values()} | set(inflight)
        assert holding.commit_offsets()[0] == (min(still) if still else offset)
