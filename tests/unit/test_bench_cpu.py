"""The benchmark's CPU accounting: /proc readings and what an event costs each part."""

from __future__ import annotations

import os
import time

from services.benchmark import cpu


def test_a_process_cpu_seconds_grow_while_it_works() -> None:
    before = cpu.cpu_seconds(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn 0.2 s of CPU
        pass
    after = cpu.cpu_seconds(os.getpid())
    assert after is not None
    assert after - before >= 0.15


def test_a_gone_process_reads_none() -> None:
    assert cpu.cpu_seconds(2**22 + 12345) is None  # above the kernel's pid_max


def test_children_of_finds_a_child() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child waits until the parent has listed it, then leaves
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0)
    os.close(read_end)
    try:
        assert pid in cpu.children_of(os.getpid())
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def test_usage_gives_cores_and_milliseconds_per_event() -> None:
    before = cpu.Reading(100.0, {"escalator": 10.0, "kafka": 5.0})
    after = cpu.Reading(110.0, {"escalator": 19.0, "kafka": 7.0, "postgres": 1.0})
    usage = cpu.usage(before, after, events=10_000)
    assert usage["escalator"] == {"cores": 0.9, "ms_per_event": 0.9}
    assert usage["kafka"] == {"cores": 0.2, "ms_per_event": 0.2}
    assert usage["postgres"] == {"cores": 0.1, "ms_per_event": 0.1}  # started in between: all its time
    assert usage["total"] == {"cores": 1.2, "ms_per_event": 1.2}


def test_usage_never_goes_negative() -> None:
    # A PostgreSQL backend that ended in between takes its time with it.
    usage = cpu.usage(cpu.Reading(0.0, {"postgres": 3.0}), cpu.Reading(1.0, {"postgres": 2.5}), events=1)
    assert usage["postgres"]["cores"] == 0.0
