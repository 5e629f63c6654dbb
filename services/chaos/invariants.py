"""The chaos run's invariants, as pure comparisons of what was sent, logged and received.

- accepted: every event the intake answered 202 is in the audit log exactly once (by event_id);
- escalations: every due escalation was emitted. An incident is due when no acknowledge or resolve
  of it happened (the command's `occurred_at`, when the intake took it) before its deadline (the
  `incident.opened` instant plus the policy's delay); it is emitted when the audit log holds its
  `escalation.step_reached`. An incident settled before its deadline must not be escalated, unless
  the settling command reached Kafka only after the timer had fired (the intake answered 503 while
  the broker was away, and the command landed later or was sent again): the escalator cannot know a
  command that is not in the log yet, so either outcome is allowed there, and such races are counted;
- deliveries: every emitted step reached the receiver under one idempotency key (one target, one
  channel), and each key was POSTed (answered 200) exactly once, except a resend under the same key
  after a notifier was killed between the receiver's answer and the result's write: no sender can
  know what a receiver took while the sender was dying (see tests/e2e/test_notifier_crash.py).
  Such resends are counted and shown; any other second POST is a violation;
- commands: every trigger in incidents.commands was applied by the escalator (an event caused by it:
  opened, deduplicated or reopened), and every incident that got an acknowledge or resolve has an
  event caused by one of them: a command in the log that the escalator skipped is lost;
- chain: `escalation audit verify` over the whole log says OK.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

TRIGGER = "incident.trigger"
SETTLES = frozenset({"incident.acknowledge", "incident.resolve"})
TIMER_FIRED = "timer.fired"


@dataclass(frozen=True)
class Command:
    """One audited row of incidents.commands (`occurred_at` in epoch seconds)."""

    event_id: str
    type: str
    incident_key: str
    partition: int
    offset: int
    occurred_at: float = 0.0


@dataclass(frozen=True)
class Opened:
    """An `incident.opened` event: the incident, its key, the trigger that opened it, and when."""

    incident_id: str
    incident_key: str
    trigger_id: str
    opened_at: float = 0.0


@dataclass(frozen=True)
class Check:
    """One invariant's verdict, its counts, and examples of what broke it."""

    name: str
    ok: bool
    counts: dict[str, int]
    problems: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # incident ids at fault, for their timelines


def accepted_once(accepted: Iterable[str], audited: Mapping[str, int]) -> Check:
    """Every 202'd event id is in the audit log once; `audited` counts rows per event id."""
    ids = set(accepted)
    missing = sorted(i for i in ids if audited.get(i, 0) == 0)
    doubled = sorted(i for i in ids if audited.get(i, 0) > 1)
    problems = [f"202'd event {i} not in the audit log" for i in missing[:10]]
    problems += [f"event {i} in the audit log {audited[i]} times" for i in doubled[:10]]
    counts = {"accepted": len(ids), "audited": sum(1 for i in ids if audited.get(i, 0) == 1)}
    counts |= {"missing": len(missing), "duplicated": len(doubled)}
    return Check("every 202'd event audited exactly once", not missing and not doubled, counts, problems)


@dataclass(frozen=True)
class Fate:
    """What happened to one incident, read from its commands in partition order."""

    incident_id: str
    due: bool  # nobody acknowledged or resolved it before its deadline
    fired: bool  # a timer.fired for it is in the log
    raced: bool = False  # settled before its deadline, but that command reached Kafka after the timer fired
    settle_applied: bool | None = None  # None: never acknowledged or resolved


def fates(
    commands: Sequence[Command], opened: Sequence[Opened], delay: float, caused: frozenset[str] = frozenset()
) -> list[Fate]:
    """Each opened incident's fate: its commands are those of its key from its opening trigger
    up to the next opening trigger of the same key (a key resolved and triggered again opens anew)."""
    by_key: dict[str, list[Command]] = defaultdict(list)
    for cmd in commands:
        by_key[cmd.incident_key].append(cmd)
    offset_of = {c.event_id: (c.partition, c.offset) for c in commands}
    openings: dict[str, list[tuple[tuple[int, int], Opened]]] = defaultdict(list)
    result = []
    for inc in opened:
        at = offset_of.get(inc.trigger_id)
        if at is None:  # the trigger is not in the log: cannot place it, count it as due
            result.append(Fate(inc.incident_id, due=True, fired=False))
            continue
        openings[inc.incident_key].append((at, inc))
    for key, starts in openings.items():
        starts.sort(key=lambda s: s[0])
        cmds = sorted(by_key[key], key=lambda c: (c.partition, c.offset))
        for n, (start, inc) in enumerate(starts):
            end = starts[n + 1][0] if n + 1 < len(starts) else None
            mine = [
                c for c in cmds if start < (c.partition, c.offset) and (end is None or (c.partition, c.offset) < end)
            ]
            deadline = inc.opened_at + delay
            early = [i for i, c in enumerate(mine) if c.type in SETTLES and c.occurred_at < deadline]
            fired = [i for i, c in enumerate(mine) if c.type == TIMER_FIRED]
            raced = bool(early) and bool(fired) and fired[0] < early[0]
            settles = [c for c in mine if c.type in SETTLES]
            applied = any(c.event_id in caused for c in settles) if settles else None
            result.append(Fate(inc.incident_id, not early, bool(fired), raced, applied))
    return result


def escalations_emitted(fates_: Sequence[Fate], stepped: Iterable[str]) -> Check:
    """Every due incident has its step; no incident settled in time (and in the log in time) has one."""
    with_step = set(stepped)
    due = [f for f in fates_ if f.due]
    missing = [f for f in due if f.incident_id not in with_step]
    unwanted = [f for f in fates_ if not f.due and not f.raced and f.incident_id in with_step]
    raced = [f for f in fates_ if f.raced]
    problems = [
        f"incident {f.incident_id} was due ({'timer fired' if f.fired else 'no timer fired'}) but never escalated"
        for f in missing[:10]
    ]
    problems += [f"incident {f.incident_id} escalated although settled before its deadline" for f in unwanted[:10]]
    counts = {
        "incidents": len(fates_),
        "due": len(due),
        "emitted": len(due) - len(missing),
        "missing": len(missing),
        "escalated_not_due": len(unwanted),
        "settle_raced_timer": len(raced),
        "raced_escalated": sum(1 for f in raced if f.incident_id in with_step),
    }
    subjects = [f.incident_id for f in [*missing, *unwanted]]
    return Check("every due escalation emitted", not missing and not unwanted, counts, problems, subjects)


def commands_applied(commands: Sequence[Command], fates_: Sequence[Fate], caused: frozenset[str]) -> Check:
    """Every trigger caused an event; every settled incident has an event caused by one of its settles."""
    triggers = [c for c in commands if c.type == TRIGGER]
    skipped = [c for c in triggers if c.event_id not in caused]
    settled = [f for f in fates_ if f.settle_applied is not None]
    lost = [f for f in settled if not f.settle_applied]
    problems = [
        f"trigger {c.event_id} ({c.incident_key}, partition {c.partition} offset {c.offset}) never applied"
        for c in skipped[:10]
    ]
    problems += [f"incident {f.incident_id}: its acknowledge/resolve was never applied" for f in lost[:10]]
    counts = {
        "triggers": len(triggers),
        "triggers_lost": len(skipped),
        "settled": len(settled),
        "settles_lost": len(lost),
    }
    subjects = [f.incident_id for f in lost]
    return Check("every command applied by the escalator", not skipped and not lost, counts, problems, subjects)


def deliveries_once(
    steps: Iterable[str],
    received: Mapping[str, int],
    step_of_key: Mapping[str, str],
    arrivals: Mapping[str, Sequence[float]],
    notifier_kills: Sequence[float],
) -> Check:
    """Each step's page arrived under one key, and each key once (resends across a notifier kill -9 excepted)."""
    keys_of: dict[str, set[str]] = defaultdict(set)
    for key, step in step_of_key.items():
        keys_of[step].add(key)
    wanted = set(steps)
    missing = sorted(wanted - set(keys_of))
    several = sorted(s for s in wanted if len(keys_of.get(s, ())) > 1)
    stray = sorted(s for s in keys_of if s not in wanted)
    resent: list[str] = []
    doubled: list[str] = []
    for key, count in received.items():
        if count <= 1:
            continue
        times = sorted(arrivals.get(key, ()))
        explained = len(times) == 2 and any(times[0] <= k <= times[1] for k in notifier_kills)
        (resent if explained else doubled).append(key)
    problems = [f"step {s} never reached the receiver" for s in missing[:10]]
    problems += [f"step {s} arrived under {len(keys_of[s])} keys" for s in several[:10]]
    problems += [f"key {k} POSTed {received[k]} times with no notifier kill in between" for k in doubled[:10]]
    problems += [f"key of unknown step {s} received" for s in stray[:10]]
    counts = {
        "steps": len(wanted),
        "keys": len(received),
        "posts": sum(received.values()),
        "max_per_key": max(received.values(), default=0),
        "resent_across_kill": len(resent),
        "missing": len(missing),
        "duplicated": len(doubled),
    }
    ok = not missing and not several and not doubled and not stray
    return Check("receiver saw each (step, target, channel) once", ok, counts, problems)


def chain_verified(ok: bool, rows: int, chains: int, checkpoints: int, problems: Sequence[str]) -> Check:
    """The audit chain verification's verdict as a check."""
    counts = {"rows": rows, "chains": chains, "checkpoints": checkpoints}
    return Check("audit chain verifies", ok, counts, list(problems)[:10])


def counted(values: Iterable[str]) -> dict[str, int]:
    """Occurrences of each value (rows per event id)."""
    return dict(Counter(values))
