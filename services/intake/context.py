"""What every intake route shares: who may send, how fast, and the way to Kafka."""

from __future__ import annotations

import collections
import functools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException
from fastapi.responses import Response
from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from services.intake.kafka_link import KafkaLink, PartialPublish
from shared.auth import AccessList, Principal, Role
from shared.envelope import Envelope
from shared.http import problem
from shared.kafka import PublishError
from shared.links import LinkSigner
from shared.logging import get_logger
from shared.ratelimit import TokenBuckets

log = get_logger("intake")

ACCEPTED = Counter("intake_events_accepted_total", "Events written to Kafka and answered 202", ["integration", "type"])
REJECTED = Counter("intake_events_unavailable_total", "Events answered 503 because Kafka did not acknowledge")
LIMITED = Counter("intake_requests_rate_limited_total", "Requests answered 429", ["integration"])
PUBLISH_SECONDS = Histogram("intake_publish_seconds", "Time until Kafka acknowledged a request's events")

RETRY_AFTER_SECONDS = 5
SENDERS = frozenset({Role.INTEGRATION, Role.RESPONDER})


@functools.cache
def _accepted(integration: str, type_: str) -> Counter:
    """ACCEPTED's child of these labels (looked up once: labels() takes a lock and builds a key)."""
    return ACCEPTED.labels(integration, type_)


@dataclass
class Intake:
    """Shared by the routes of one app."""

    link: KafkaLink
    access: AccessList
    buckets: TokenBuckets
    links: LinkSigner | None = None  # accepts the notifier's acknowledge/resolve links when set

    def service_for(self, principal: Principal, service: str) -> None:
        """An integration key may only report for its own service (403 otherwise)."""
        if principal.service is not None and principal.service != service:
            raise HTTPException(
                403, f"Integration key {principal.name!r} reports for service {principal.service!r}, not {service!r}"
            )

    def limited(self, principal: Principal, fallback: str, integration: str, cost: int = 1) -> Response | None:
        """429 with Retry-After when the caller's bucket is empty, else None (and the tokens spent)."""
        key = principal.name if principal.role is not None else f"anonymous/{fallback}"
        wait = self.buckets.take(key, time.monotonic(), cost)
        if wait is None:
            return None
        LIMITED.labels(integration).inc()
        if math.isinf(wait):
            return problem(
                429, "Too many events at once", f"at most {int(self.buckets.burst)} events in one request for this key"
            )
        return problem(
            429,
            "Too many requests",
            f"{key} is over {self.buckets.rate:g} events/s; retry after the given seconds",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    async def accept(
        self, integration: str, commands: Sequence[tuple[str, BaseModel, str, str]]
    ) -> list[Envelope] | Response:
        """Write the commands to Kafka: their envelopes once all are acknowledged, else a 503 response."""
        try:
            with PUBLISH_SECONDS.time():
                envelopes = await self.link.publish_all(commands)
        except PublishError as exc:
            REJECTED.inc(len(commands))
            accepted = exc.accepted if isinstance(exc, PartialPublish) else []
            log.warning("events not accepted: Kafka unavailable", error=str(exc), accepted=len(accepted))
            missing = len(commands) - len(accepted)
            detail = "The events were not stored; send them again."
            if accepted:
                detail = f"{missing} of {len(commands)} not stored; send all again (stored ones deduplicate)."
            return problem(503, "Kafka unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        for type_, count in collections.Counter(env.type for env in envelopes).items():
            _accepted(integration, type_).inc(count)
        # Debug: every accepted event is in the audit log, and a line per event is a real share of the hot
        # path; below debug not even the arguments are built (a batch's 1,000 ids).
        if log.is_enabled_for(logging.DEBUG):
            if len(envelopes) == 1:
                env = envelopes[0]
                log.debug("event accepted", event_id=str(env.event_id), incident_key=env.incident_key, type=env.type)
            else:  # one line per request: a batch's events are listed by id, not logged one by one
                log.debug("events accepted", integration=integration, events=[str(e.event_id) for e in envelopes])
        return envelopes
