"""SIGTERM for the long commands that start processes (chaos, bench): stop what they started, then exit."""

from __future__ import annotations

import asyncio
import signal


def cancel_on_sigterm() -> None:
    """Make SIGTERM cancel the calling task, so its `finally` blocks stop the processes it started.

    Without it a SIGTERM (a CI timeout, `kill`) ends the Python process at once and leaves its
    workers running against a stack nobody will stop.
    """
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
