"""A serving process (intake, notifier) keeps the cyclic garbage collector off its hot path."""

from __future__ import annotations

import subprocess
import sys

from shared.heap import GC_YOUNG_THRESHOLD

# In a child process: freezing is for the whole process, and this one builds many apps.
PROBE = """
import gc
import services.intake.app, services.notifier.app
from shared.heap import settle_heap
before = gc.get_freeze_count()
settle_heap()
print(before, gc.get_freeze_count(), gc.get_threshold()[0])
"""


def test_settle_heap_freezes_what_start_built_and_collects_the_young_rarely() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    before, frozen, young = out
    assert before == "0"
    assert int(frozen) > 10_000  # modules, pydantic's validators, FastAPI: tens of thousands of objects
    assert int(young) == GC_YOUNG_THRESHOLD
