"""The chaos run's invariants as pure comparisons: what counts as lost, doubled, due and resent."""

from __future__ import annotations

from collections import Counter

from services.chaos import invariants as inv


def cmd(event_id: str, type_: str, key: str, offset: int, at: float = 0.0) -> inv.Command:
    return inv.Command(event_id, type_, key, 0, offset, at)


def test_every_accepted_event_audited_once_passes() -> None:
    check = inv.accepted_once(["a", "b"], {"a": 1, "b": 1, "other": 1})
    assert check.ok
    assert check.counts == {"accepted": 2, "audited": 2, "missing": 0, "duplicated": 0}


def test_a_missing_and_a_doubled_event_fail_with_their_ids() -> None:
    check = inv.accepted_once(["a", "b", "c"], {"a": 1, "b": 2})
    assert not check.ok
    assert check.counts["missing"] == 1
    assert check.counts["duplicated"] == 1
    assert any("c" in p for p in check.problems)
    assert any("b" in p for p in check.problems)


DELAY = 5.0
OPENED_AT = 100.0  # the deadline is at 105.0


def opened(incident_id: str = "i1", key: str = "s/k1", trigger: str = "t1", at: float = OPENED_AT) -> inv.Opened:
    return inv.Opened(incident_id, key, trigger, at)


def test_never_settled_incident_is_due_and_must_escalate() -> None:
    commands = [cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9), cmd("f1", inv.TIMER_FIRED, "s/k1", 2, at=105.1)]
    fates = inv.fates(commands, [opened()], DELAY)
    assert fates == [inv.Fate("i1", due=True, fired=True)]
    assert inv.escalations_emitted(fates, {"i1"}).ok
    missing = inv.escalations_emitted(fates, set())
    assert not missing.ok
    assert missing.counts["missing"] == 1


def test_a_lost_timer_is_due_even_without_a_firing() -> None:
    fates = inv.fates([cmd("t1", inv.TRIGGER, "s/k1", 1)], [opened()], DELAY)
    assert fates[0].due
    assert not fates[0].fired
    assert not inv.escalations_emitted(fates, set()).ok


def test_acknowledged_before_the_deadline_is_not_due_and_must_not_escalate_however_late_processed() -> None:
    commands = [
        cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9),
        cmd("a1", "incident.acknowledge", "s/k1", 5, at=101.0),
        cmd("f1", inv.TIMER_FIRED, "s/k1", 9, at=105.0),  # stale: the acknowledgement came first in the partition
    ]
    fates = inv.fates(commands, [opened()], DELAY)
    assert not fates[0].due
    assert not fates[0].raced
    assert inv.escalations_emitted(fates, set()).ok
    wrong = inv.escalations_emitted(fates, {"i1"})
    assert not wrong.ok
    assert wrong.counts["escalated_not_due"] == 1


def test_resolved_after_the_deadline_is_due() -> None:
    commands = [
        cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9),
        cmd("r1", "incident.resolve", "s/k1", 2, at=106.0),  # in the log before the timer, but too late
        cmd("f1", inv.TIMER_FIRED, "s/k1", 3, at=110.0),
    ]
    fates = inv.fates(commands, [opened()], DELAY)
    assert fates[0].due
    assert not inv.escalations_emitted(fates, set()).ok


def test_settled_in_time_but_logged_after_the_timer_fired_may_go_either_way() -> None:
    commands = [
        cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9),
        cmd("f1", inv.TIMER_FIRED, "s/k1", 2, at=105.0),
        cmd("r1", "incident.resolve", "s/k1", 3, at=101.0),  # answered 503, landed in Kafka later
    ]
    fates = inv.fates(commands, [opened()], DELAY)
    assert fates[0].raced
    assert not fates[0].due
    for stepped in (set(), {"i1"}):
        check = inv.escalations_emitted(fates, stepped)
        assert check.ok
        assert check.counts["settle_raced_timer"] == 1


def test_a_key_opened_twice_splits_its_commands_at_the_second_opening() -> None:
    commands = [
        cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9),
        cmd("r1", "incident.resolve", "s/k1", 2, at=100.5),
        cmd("t2", inv.TRIGGER, "s/k1", 3, at=200.0),  # after the resolve: a new incident
        cmd("f2", inv.TIMER_FIRED, "s/k1", 8, at=205.1),
    ]
    both = [opened(), opened("i2", trigger="t2", at=200.1)]
    fates = {f.incident_id: f for f in inv.fates(commands, both, DELAY)}
    assert not fates["i1"].due
    assert fates["i2"].due
    assert fates["i2"].fired


def test_each_step_received_once_passes() -> None:
    check = inv.deliveries_once(
        steps=["s1", "s2"],
        received=Counter({"k1": 1, "k2": 1}),
        step_of_key={"k1": "s1", "k2": "s2"},
        arrivals={"k1": [1.0], "k2": [2.0]},
        notifier_kills=[],
    )
    assert check.ok
    assert check.counts["max_per_key"] == 1
    assert check.counts["posts"] == 2


def test_a_resend_across_a_notifier_kill_is_counted_not_failed() -> None:
    check = inv.deliveries_once(
        steps=["s1"],
        received=Counter({"k1": 2}),
        step_of_key={"k1": "s1"},
        arrivals={"k1": [10.0, 14.0]},
        notifier_kills=[10.2],
    )
    assert check.ok
    assert check.counts["resent_across_kill"] == 1
    assert check.counts["max_per_key"] == 2


def test_a_second_post_without_a_kill_in_between_fails() -> None:
    check = inv.deliveries_once(
        steps=["s1"],
        received=Counter({"k1": 2}),
        step_of_key={"k1": "s1"},
        arrivals={"k1": [10.0, 14.0]},
        notifier_kills=[20.0],
    )
    assert not check.ok
    assert check.counts["duplicated"] == 1


def test_a_step_never_received_or_under_two_keys_fails() -> None:
    check = inv.deliveries_once(
        steps=["s1", "s2"],
        received=Counter({"k1": 1, "k1b": 1}),
        step_of_key={"k1": "s1", "k1b": "s1"},
        arrivals={"k1": [1.0], "k1b": [2.0]},
        notifier_kills=[],
    )
    assert not check.ok
    assert check.counts["missing"] == 1
    assert any("2 keys" in p for p in check.problems)


def test_every_trigger_and_settle_applied_passes() -> None:
    commands = [
        cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9),
        cmd("t1b", inv.TRIGGER, "s/k1", 2, at=100.1),  # a duplicate: deduplicated, caused by t1b
        cmd("r1", "incident.resolve", "s/k1", 3, at=100.5),
    ]
    caused = frozenset({"t1", "t1b", "r1"})
    fates = inv.fates(commands, [opened()], DELAY, caused)
    check = inv.commands_applied(commands, fates, caused)
    assert check.ok
    assert check.counts == {"triggers": 2, "triggers_lost": 0, "settled": 1, "settles_lost": 0}


def test_a_resolve_in_the_log_the_escalator_never_applied_is_lost() -> None:
    commands = [cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9), cmd("r1", "incident.resolve", "s/k1", 3, at=100.5)]
    caused = frozenset({"t1"})
    fates = inv.fates(commands, [opened()], DELAY, caused)
    check = inv.commands_applied(commands, fates, caused)
    assert not check.ok
    assert check.counts["settles_lost"] == 1


def test_a_trigger_that_caused_nothing_is_lost() -> None:
    commands = [cmd("t1", inv.TRIGGER, "s/k1", 1, at=99.9), cmd("t2", inv.TRIGGER, "s/k2", 2, at=99.9)]
    check = inv.commands_applied(commands, [], frozenset({"t1"}))
    assert not check.ok
    assert check.counts["triggers_lost"] == 1
