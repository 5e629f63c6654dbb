"""Faust must not count a command as done when it only skipped it during a rebalance.

faust-streaming (0.15.3) acknowledges a message a stream takes while the flow is paused for a
rebalance, or one fetched in an older consumer generation, as "skipped" (`faust/streams.py`), and
keeps the acknowledged offsets of a partition the worker holds through the rebalance; the next
commit then moves past commands that were never applied (`escalation chaos` lost up to 133 per run,
see docs/reliability.md). Here an acknowledgement during a rebalance, or of an older generation,
releases the message (nothing waits for it any more) without advancing the committed offset: after
the rebalance Faust seeks to the committed offsets and reads those commands again. A command that
had been applied is then ignored by the escalator's redelivery guard (its offset is at or below the
incident's stored offset); one that had been skipped is applied.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from shared.topics import INCIDENT_COMMANDS

_faust_ack = Consumer.ack


def _ack(self: Any, message: Any) -> bool:
    app = self.app
    if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
        result: bool = _faust_ack(self, message)
        return result
    with ack_lock:
        if not message.acked:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
    return False


_faust_perform_seek = Consumer.perform_seek


async def _perform_seek(self: Any) -> None:
    """Seek to the committed offsets, and a partition of incidents.commands with none to its start.

    aiokafka's `seek_to_committed` only seeks where an offset above 0 was committed; a partition with
    none kept its fetch position, past the commands the rebalance dropped from Faust's buffers (seen
    at a fresh group's first rebalance: offsets 0-2 of the partitions a worker kept, never applied).
    """
    await _faust_perform_seek(self)
    for tp in self.assignment():
        if tp.topic == INCIDENT_COMMANDS and not self._committed_offset.get(tp):
            await self.seek(tp, 0)


def install() -> None:
    """Replace Faust's consumer acknowledgement and seek with the ones above (idempotent)."""
    Consumer.ack = _ack  # type: ignore[method-assign]
    Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
