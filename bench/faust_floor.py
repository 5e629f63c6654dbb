"""The cheapest Faust worker doing the escalator's Kafka work, as the escalator benchmark's floor.

Per command it does what the escalator must do at the least, with no domain logic: consume the
command, write one table entry the size of an incident's state (changelog-backed) and send one event,
with the same broker settings as the escalator. Run by `bench.escalator` in the same run:

    python -m bench.faust_floor  (env: FLOOR_BOOTSTRAP, FLOOR_APP_ID, FLOOR_COUNT, FLOOR_OUT, FLOOR_DATA_DIR)

When FLOOR_COUNT commands are done it writes `{"first": t0, "last": t1, "count": n}` to FLOOR_OUT.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import faust
from faust.types import StreamT

from shared.topics import INCIDENT_COMMANDS

STATE_BYTES = 1_600  # about what the escalator stores per open incident (docs/performance.md)


def record(out: Path, first: float, last: float, count: int) -> None:
    """Write the result the benchmark waits for."""
    out.write_text(json.dumps({"first": first, "last": last, "count": count}))


def build(bootstrap: str, app_id: str, count: int, out: Path, data_dir: str) -> faust.App:
    """A Faust app with one agent, one table and one output topic, configured like the escalator."""
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=8,
        topic_replication_factor=1,
        producer_acks=-1,
        producer_linger=0.005,
        web_enabled=False,
        datadir=data_dir,
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        table_key_serializer="raw",
        table_value_serializer="raw",
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    commands = app.topic(INCIDENT_COMMANDS, **raw)  # type: ignore[arg-type]
    events = app.topic(f"{app_id}-events", partitions=8, **raw)  # type: ignore[arg-type]
    table = app.Table(
        "floor-state",
        default=None,
        partitions=8,
        schema=faust.Schema(key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw"),
    )
    state = b"x" * STATE_BYTES
    seen = {"n": 0, "first": 0.0}

    async def process(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            key = event.message.key or b""
            table[key.decode()] = state
            await events.send(key=key, value=event.value)
            seen["n"] += 1
            if seen["n"] == 1:
                seen["first"] = time.time()
            if seen["n"] == count:
                record(out, seen["first"], time.time(), count)

    app.agent(commands, name="floor")(process)
    return app


def main() -> None:
    env = os.environ
    out = Path(env["FLOOR_OUT"])
    app = build(env["FLOOR_BOOTSTRAP"], env["FLOOR_APP_ID"], int(env["FLOOR_COUNT"]), out, env["FLOOR_DATA_DIR"])
    asyncio.set_event_loop(asyncio.new_event_loop())
    with open(os.devnull, "w") as console:
        worker = faust.Worker(app, loglevel="WARNING", quiet=True, stdout=console, stderr=sys.stderr)
        worker.execute_from_commandline()


if __name__ == "__main__":
    main()
