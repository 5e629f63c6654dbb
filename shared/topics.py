"""Kafka topic names: the only place they are spelled."""

from __future__ import annotations

INCIDENT_COMMANDS = "incidents.commands"
ESCALATION_EVENTS = "escalations.events"
NOTIFICATION_RESULTS = "notifications.results"

ALL_TOPICS = (INCIDENT_COMMANDS, ESCALATION_EVENTS, NOTIFICATION_RESULTS)

# The notifier's own topic of deliveries waiting for a delay or a retry (not part of the history:
# every attempt's outcome is on notifications.results).
NOTIFICATION_PENDING = "notifications.pending"


def dead_letter_topic(consumer: str) -> str:
    """Return the dead-letter topic of one consumer (service) name."""
    return f"deadletter.{consumer}"
