"""Which notifications were already delivered, learnt from `notifications.results`.

The notifier commits a step's offset only after its deliveries finished, so a crash makes it read
the step again. Before sending, it asks this ledger: a key delivered before (by this instance, or
by another one that had the partition before a rebalance) is not sent again. Every instance reads
the delivered results from the beginning (about 60 bytes a notification) and keeps following; a
notifier taking partitions over `sync`s it before trying any of their pages again, so what the
previous owner recorded is known then, though the ledger reads in batches.
What is left: a crash between the receiver's answer and the result's write resends that one.
"""

from __future__ import annotations

import orjson

from shared.events import NOTIFICATION_DELIVERED
from shared.follow import TopicView
from shared.topics import NOTIFICATION_RESULTS


class DeliveredLedger(TopicView):
    """Idempotency keys of delivered notifications."""

    topic = NOTIFICATION_RESULTS
    what = "delivered notifications"
    # A delivery made here is recorded at once (`add`); what the topic adds is another notifier's,
    # read before this one takes over its partitions (seconds later): no need for a fetch request
    # per result written.
    batch_wait_ms = 100

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._keys: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        """Record a delivery made here (before its result is read back)."""
        self._keys.add(key)

    def learn(self, value: bytes | None) -> None:
        """Take one message of notifications.results; only deliveries matter."""
        if value is None or NOTIFICATION_DELIVERED.encode() not in value:
            return
        try:
            message = orjson.loads(value)
            if message.get("type") == NOTIFICATION_DELIVERED:
                self._keys.add(str(message["payload"]["idempotency_key"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
