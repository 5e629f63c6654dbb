"""Delivery channels: one small interface (`Channel`), one adapter per way of reaching people."""

from services.notifier.channels.base import Channel, Notification, notification_of
from services.notifier.channels.http import HttpPoster, status_outcome
from shared.links import LinkSigner

__all__ = ["Channel", "HttpPoster", "LinkSigner", "Notification", "notification_of", "status_outcome"]
