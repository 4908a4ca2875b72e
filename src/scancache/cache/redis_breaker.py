"""Circuit breakers for RedisBackend: one per Redis node, so one dead node costs only its own keys.

After a connection error or a timeout on a node, calls to that node fail at once (RedisUnavailable,
no I/O) for a short cool-down instead of each waiting for its own timeout; then one call probes the
node (half open) while the others keep failing fast, and any answer from the server (a value, or an
error reply such as OOM) closes the breaker again. A single server has one breaker (node ""); in a
Redis Cluster each slot owner has its own, so reads of healthy shards never stop while one master is
down (redis-py's MGET alone read them all; one breaker for the whole cluster starved them).

No I/O and no redis-py import here: a breaker only keeps deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Breakers"]


class Breakers:
    """Per-node breaker deadlines. `trips` counts openings; `unavailable` builds the fail-fast error.

    Thread-safe enough for its purpose: each update is one dict store, and a lost race at worst lets
    one extra probe through.
    """

    def __init__(self, cooldown_seconds: float, timeout_seconds: float,
                 unavailable: Callable[[str], BaseException],
                 is_outage: Callable[[BaseException], bool]) -> None:
        self.cooldown_seconds = cooldown_seconds
        self.timeout_seconds = timeout_seconds
        self.trips = 0
        self._unavailable = unavailable
        self._is_outage = is_outage
        self._open_until: dict[str, float] = {}  # node -> monotonic deadline; absent = closed

    def admit(self, node: str) -> bool:
        """Let a call to node through: False for a closed breaker, True for the one probe after a
        cool-down; raises the fail-fast error while the breaker is open."""
        until = self._open_until.get(node)
        if until is None:
            return False
        now = time.monotonic()
        if now < until:
            raise self._unavailable(node)
        # Half open: this call probes; the others fail fast until it answers or times out.
        self._open_until[node] = now + self.cooldown_seconds + self.timeout_seconds
        return True

    def after(self, node: str, probe: bool, exc: BaseException | None) -> None:
        """Record how a call admitted by admit(node) ended: exc is None on success.

        An outage error (connection refused, timeout) opens the breaker; any answer from the server,
        even an error reply, proves the node alive and closes a probing breaker. A call cancelled
        before an answer leaves the probe deadline in place (the next call after it probes again).
        """
        if exc is None:
            if probe:
                self._open_until.pop(node, None)
            return
        if self._is_outage(exc):
            self._open_until[node] = time.monotonic() + self.cooldown_seconds
            self.trips += 1
        elif probe and isinstance(exc, Exception):
            self._open_until.pop(node, None)

    def is_open(self, node: str) -> bool:
        """True while calls to node would fail fast."""
        until = self._open_until.get(node)
        return until is not None and time.monotonic() < until

    def any_open(self) -> bool:
        """True while some node's calls would fail fast."""
        now = time.monotonic()
        return any(now < until for until in list(self._open_until.values()))
