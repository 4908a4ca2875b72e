"""Upstream lookups: what one name resolves to right now, from nameservers or the system resolver.

Both return one Resolution (or DNSError) per record type asked; the caching policy (TTL clamps,
negative caching, stale) lives in scancache.dns.cache, not here.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from scancache.dns.client import DNSClient
from scancache.dns.names import to_wire
from scancache.dns.wire import NOERROR, NXDOMAIN, RCODE_NAMES, Answer
from scancache.errors import DNSError

__all__ = ["Resolution", "Upstream", "NameserverUpstream", "MAX_CNAME_FOLLOWUPS"]

#: Extra queries made when an answer ends at a CNAME (the server did not chase it).
MAX_CNAME_FOLLOWUPS = 8
_resolution = tuple.__new__  # Resolution(...) without NamedTuple's Python-level __new__ (miss path)


class Resolution(NamedTuple):
    """One record type's outcome: addresses, their TTL (None: unknown) and why it is empty."""

    addresses: list[str]
    ttl: float | None
    negative: str | None = None  # "NXDOMAIN" or "NODATA" when addresses is empty


class Upstream(Protocol):
    """Where answers come from; DNSCache asks it only on a cache miss or a refresh."""

    counters: dict[str, int]

    async def lookup(self, name: str, qtypes: tuple[int, ...]) -> list[Resolution | DNSError]:
        """One Resolution or DNSError per qtype, in order; never raises DNSError itself."""
        ...

    def close(self) -> None:
        """Release sockets."""
        ...


class NameserverUpstream:
    """Queries the configured nameservers through DNSClient; follows a CNAME chain left open."""

    def __init__(self, nameservers: list[tuple[str, int]], *, timeout_seconds: float, attempts: int
                 ) -> None:
        self.client = DNSClient(nameservers, timeout_seconds=timeout_seconds, attempts=attempts)
        self.counters = {"upstream_lookups": 0, "servfails": 0, "refused": 0, "nxdomain": 0,
                         "nodata": 0, "cname_followups": 0}

    async def lookup(self, name: str, qtypes: tuple[int, ...]) -> list[Resolution | DNSError]:
        """Send every qtype at once (one Future each, no Task), then collect them in order."""
        self.counters["upstream_lookups"] += 1
        wire = to_wire(name)
        if len(qtypes) == 1:  # the bulk path: no lists of futures, no extra coroutine on success
            try:
                answer = await self.client.query(name, qtypes[0], wire)
                if answer.rcode == NOERROR and answer.addresses:
                    return [_resolution(Resolution, (answer.addresses, answer.ttl, None))]
                return [await self._settle(name, qtypes[0], answer)]
            except DNSError as exc:
                return [exc]
        futures = [self.client.query(name, qtype, wire) for qtype in qtypes]
        results: list[Resolution | DNSError] = []
        for qtype, future in zip(qtypes, futures, strict=True):
            try:
                answer = await future
                results.append(await self._settle(name, qtype, answer))
            except DNSError as exc:
                results.append(exc)
        return results

    async def _settle(self, name: str, qtype: int, answer: Answer) -> Resolution:
        ttl = answer.ttl
        for _ in range(MAX_CNAME_FOLLOWUPS):
            target = answer.cname_target
            if target is None or answer.addresses:
                break
            self.counters["cname_followups"] += 1
            try:
                wire = to_wire(target)
            except (UnicodeError, ValueError):
                raise DNSError(name, f"bad CNAME target {target!r}") from None
            answer = await self.client.query(target, qtype, wire)
            if answer.ttl is not None:
                ttl = answer.ttl if ttl is None else min(ttl, answer.ttl)
        rcode = answer.rcode
        if rcode == NOERROR and answer.addresses:
            return Resolution(answer.addresses, ttl)
        if rcode == NOERROR and answer.cname_target is not None:
            raise DNSError(name, "CNAME chain too long")
        if rcode in (NOERROR, NXDOMAIN):
            kind = "NXDOMAIN" if rcode == NXDOMAIN else "NODATA"
            self.counters["nxdomain" if rcode == NXDOMAIN else "nodata"] += 1
            # No SOA in the authority section: RFC 2308 says not to cache, so 0 (the policy then
            # keeps it for min_ttl_seconds only, to damp repeated queries).
            negative = answer.negative_ttl if answer.negative_ttl is not None else 0.0
            if ttl is not None:
                negative = min(negative, ttl)  # a chain's CNAMEs bound the negative answer too
            return Resolution([], negative, kind)
        reason = RCODE_NAMES.get(rcode, f"rcode {rcode}")
        if reason == "SERVFAIL":
            self.counters["servfails"] += 1
        elif reason == "REFUSED":
            self.counters["refused"] += 1
        raise DNSError(name, reason)

    def close(self) -> None:
        """Close the client's sockets."""
        self.client.close()

    def client_counters(self) -> dict[str, int]:
        """Wire-level counters: queries sent, retries, timeouts, TCP fallbacks, malformed answers."""
        client = self.client
        return {"upstream_queries": client.queries_sent, "retries": client.retries,
                "timeouts": client.timeouts, "tcp_fallbacks": client.tcp_fallbacks,
                "malformed": client.malformed}
