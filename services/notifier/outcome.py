"""What one delivery attempt gave, whatever the channel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt gave: delivered or not, and whether trying again can help."""

    delivered: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None
