"""SIGTERM cancels a long command's task, so its `finally` stops what it started (services/stack/signals.py)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from services.stack.signals import cancel_on_sigterm


async def test_sigterm_cancels_the_task_and_its_finally_runs() -> None:
    started, cleaned = asyncio.Event(), asyncio.Event()

    async def command() -> None:
        cancel_on_sigterm()
        try:
            started.set()
            await asyncio.Event().wait()  # runs until stopped
        finally:
            cleaned.set()

    task = asyncio.create_task(command())
    await started.wait()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned.is_set()
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
