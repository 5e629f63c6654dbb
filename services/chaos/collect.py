"""Read what the run left behind: audit rows in PostgreSQL, consumer positions in Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.audit.signing import load_private_key
from services.audit.store import AuditStore
from services.audit.verify import verify_items
from services.chaos import invariants as inv
from shared.kafka import partitions_of
from shared.topics import ALL_TOPICS, ESCALATION_EVENTS, INCIDENT_COMMANDS

AUDIT_GROUP = "audit"
ESCALATOR_GROUP = "escalator"
NOTIFIER_GROUP = "notifier"

_COMMANDS = """
SELECT event_id::text, type, incident_key, kafka_partition, kafka_offset,
       extract(epoch FROM occurred_at)::float8 FROM audit_log
WHERE topic = 'incidents.commands' AND type = ANY($1::text[])
"""
_OPENED = """
SELECT incident_id::text, incident_key, causation_id::text, extract(epoch FROM occurred_at)::float8 FROM audit_log
WHERE topic = 'escalations.events' AND type = 'incident.opened'
"""
_TIMELINE = """
SELECT topic, kafka_partition, kafka_offset, type, event_id::text, causation_id::text, occurred_at, recorded_at,
       payload->>'reason' AS reason, payload->>'token' AS token
FROM audit_log WHERE incident_key = (SELECT incident_key FROM audit_log WHERE incident_id = $1::uuid LIMIT 1)
ORDER BY topic DESC, kafka_partition, kafka_offset
"""
_STEPS = """
SELECT DISTINCT incident_id::text, payload->>'step_id' AS step_id FROM audit_log
WHERE topic = 'escalations.events' AND type = 'escalation.step_reached'
"""


@dataclass(frozen=True)
class Lag:
    """How far each consumer is behind the end of its topics (messages), and whether all is caught up."""

    audit: int
    escalator: int
    notifier: int

    @property
    def zero(self) -> bool:
        """Nothing left to consume anywhere."""
        return self.audit == 0 and self.escalator == 0 and self.notifier == 0


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of the project's topics."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        # The consumer's own metadata cache knows no topic until it subscribes: ask the broker.
        parts = [tp for t in ALL_TOPICS for tp in await partitions_of(consumer, t)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        return ends
    finally:
        await consumer.stop()


async def group_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The offsets a consumer group committed to Kafka."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in found.items()}
    finally:
        await admin.close()


def _behind(ends: dict[TopicPartition, int], done: dict[TopicPartition, int], topics: Iterable[str]) -> int:
    wanted = set(topics)
    return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items() if tp.topic in wanted)


async def lag(bootstrap: str, pool: asyncpg.Pool) -> Lag:
    """Lag of the audit (offsets stored in PostgreSQL), the escalator and the notifier (in Kafka)."""
    ends = await end_offsets(bootstrap)
    rows = await pool.fetch(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", AUDIT_GROUP
    )
    stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    escalator = await group_offsets(bootstrap, ESCALATOR_GROUP)
    notifier = await group_offsets(bootstrap, NOTIFIER_GROUP)
    return Lag(
        audit=_behind(ends, stored, ALL_TOPICS),
        escalator=_behind(ends, escalator, [INCIDENT_COMMANDS]),
        notifier=_behind(ends, notifier, [ESCALATION_EVENTS]),
    )


async def drain(bootstrap: str, pool: asyncpg.Pool, not_before: float, timeout: float) -> tuple[bool, Lag, float]:
    """Wait until every consumer caught up twice in a row, and not before `not_before` (epoch seconds,
    when the last timer is due); return (caught up, last lag, seconds waited)."""
    started = time.monotonic()
    deadline = started + timeout
    caught_up_once = False
    last = Lag(-1, -1, -1)
    while time.monotonic() < deadline:
        try:
            last = await lag(bootstrap, pool)
        except (OSError, asyncpg.PostgresError) as exc:  # a component still coming back
            last = Lag(-1, -1, -1)
            print(f"  drain: lag not readable yet ({exc!r})", flush=True)
        if last.zero and time.time() >= not_before:
            if caught_up_once:
                return True, last, time.monotonic() - started
            caught_up_once = True
        else:
            caught_up_once = False
        await asyncio.sleep(1.0)  # polling consumer positions: there is no event to await
    return False, last, time.monotonic() - started


async def audited_counts(pool: asyncpg.Pool, event_ids: list[str]) -> dict[str, int]:
    """Rows per event id, for the given ids."""
    rows = await pool.fetch(
        "SELECT event_id::text AS id, count(*) AS n FROM audit_log WHERE event_id = ANY($1::uuid[]) GROUP BY 1",
        event_ids,
    )
    return {r["id"]: r["n"] for r in rows}


async def commands(pool: asyncpg.Pool) -> list[inv.Command]:
    """Triggers, acknowledgements, resolutions and timer firings, as audited."""
    types = [inv.TRIGGER, inv.TIMER_FIRED, *inv.SETTLES]
    rows = await pool.fetch(_COMMANDS, types)
    return [inv.Command(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def opened(pool: asyncpg.Pool) -> list[inv.Opened]:
    """Every incident.opened, with the trigger that caused it."""
    return [inv.Opened(r[0], r[1], r[2], r[3]) for r in await pool.fetch(_OPENED)]


async def steps(pool: asyncpg.Pool) -> dict[str, set[str]]:
    """Incident id -> ids of its escalation steps."""
    out: dict[str, set[str]] = {}
    for r in await pool.fetch(_STEPS):
        out.setdefault(r["incident_id"], set()).add(r["step_id"])
    return out


async def caused(pool: asyncpg.Pool) -> frozenset[str]:
    """Ids of the commands the escalator emitted events for (their causation ids)."""
    rows = await pool.fetch(
        "SELECT DISTINCT causation_id::text FROM audit_log"
        " WHERE topic = 'escalations.events' AND causation_id IS NOT NULL"
    )
    return frozenset(r[0] for r in rows)


async def timeline(pool: asyncpg.Pool, incident_id: str) -> list[str]:
    """Every audited row of the incident's key, commands then events, each in log order: what a
    broken invariant is read from (offsets, who caused what, when it happened, when it was recorded)."""
    lines = [f"incident {incident_id}:"]
    for r in await pool.fetch(_TIMELINE, incident_id):
        extra = " ".join(f"{k}={r[k]}" for k in ("reason", "token") if r[k] is not None)
        lines.append(
            f"  {r['topic']}[{r['kafka_partition']}]@{r['kafka_offset']} {r['type']} {r['event_id']}"
            f" cause={r['causation_id']} occurred={r['occurred_at']:%H:%M:%S.%f}"
            f" recorded={r['recorded_at']:%H:%M:%S.%f} {extra}".rstrip()
        )
    return lines


async def total_rows(pool: asyncpg.Pool) -> int:
    """Rows in the audit log."""
    count: int = await pool.fetchval("SELECT count(*) FROM audit_log")
    return count


async def verify_chain(pool: asyncpg.Pool, signing_key: str) -> inv.Check:
    """`escalation audit verify` against the database, signatures checked with the run's key."""
    public = load_private_key(signing_key).public_key()
    report = await verify_items(AuditStore(pool).evidence(), public)
    return inv.chain_verified(report.ok, report.rows, report.chains, report.checkpoints, report.problems)
