"""The HTTP side every HTTP channel shares: one pooled aiohttp session, one POST, one outcome.

aiohttp rather than httpx here: at hundreds of concurrent deliveries httpx's connection pool spent
most of the notifier's CPU looking for a free connection (py-spy, bench/notifier.py), while an
aiohttp session costs a fraction of that per request.
"""

from __future__ import annotations

from types import TracebackType

import aiohttp

from services.notifier.outcome import DeliveryOutcome

RETRYABLE_HTTP = frozenset({408, 425, 429})
"""4xx statuses that mean "later", not "never"; every 5xx is retryable too."""

USER_AGENT = "escalation-notifier/0.1"


def status_outcome(code: int) -> DeliveryOutcome:
    """Classify an HTTP answer: 2xx delivered; 408/425/429/5xx worth retrying; other codes final."""
    if 200 <= code < 300:
        return DeliveryOutcome(True, False, status_code=code)
    retryable = code in RETRYABLE_HTTP or code >= 500
    return DeliveryOutcome(False, retryable, status_code=code, error=f"HTTP {code}")


def network_outcome(exc: BaseException) -> DeliveryOutcome:
    """A request that got no answer (refused, reset, timed out) is worth retrying."""
    return DeliveryOutcome(False, True, error=f"{type(exc).__name__}: {exc}")


class HttpPoster:
    """POSTs JSON over one pooled session; open it with `async with` (or `open()`/`close()`)."""

    def __init__(self, connections: int = 100, timeout: float = 10.0) -> None:
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session (needs the running event loop)."""
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpPoster:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def post_json(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> DeliveryOutcome:
        """POST JSON bytes once and classify the answer (never raises for delivery failures)."""
        if self._session is None:
            raise RuntimeError("HttpPoster used before open()")
        sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        try:
            async with self._session.post(url, data=body, headers=sent) as response:
                await response.read()  # the connection goes back to the pool only once the body is read
                return status_outcome(response.status)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:  # ValueError: a malformed URL
            return network_outcome(exc)
