"""Ends open console streams when the server is told to stop.

uvicorn waits for responses in flight before it shuts down; a live stream never finishes by itself,
so without this a SIGTERM would hold the audit service until its graceful-shutdown timeout (and the
stack's stop would then kill it before its last checkpoint)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class ShutdownSignal:
    """An event set on SIGTERM or SIGINT, chained before the server's own handlers."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._previous: dict[int, Handler] = {}

    def install(self) -> None:
        """Chain the handlers (only the main thread may; elsewhere streams end at their lifetime)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            self._previous[sig] = previous

            def handler(number: int, frame: FrameType | None, previous: Handler = previous) -> None:
                loop.call_soon_threadsafe(self.event.set)
                if callable(previous):
                    previous(number, frame)

            signal.signal(sig, handler)

    def uninstall(self) -> None:
        """Put the previous handlers back."""
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._previous.clear()
        self.event.set()
