"""Notification channels: one adapter per way of telling people, all behind `Channel`."""

from services.notifier.channels.base import Channel, Notification, http_outcome, notification_of
from shared.links import LinkSigner

__all__ = ["Channel", "LinkSigner", "Notification", "http_outcome", "notification_of"]
