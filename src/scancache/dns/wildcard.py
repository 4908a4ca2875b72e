"""Wildcard detection: does an answer only exist because its parent zone answers every name?

For a name's parent zone (the name minus its first label) a few random labels are asked once, with
the same record type; what they get back is the wildcard's answer set, kept in the cache for the
probes' TTL (a negative probe answer: no wildcard, kept for its negative TTL). A result is flagged
wildcard when every record it holds is in that set, so a real record under a wildcard zone that
answers differently (its own address) is never flagged. Probes go to the upstream directly, so
random names never fill the cache. This is puredns' and dnsx's model: recon lists are full of
names that "resolve" only because of a wildcard (shuffledns#53, puredns#50).

Limit: a real record whose answer equals the wildcard's is indistinguishable from it by its answer
and is flagged too.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from scancache.cache.singleflight import AsyncSingleFlight
from scancache.errors import DNSError

if TYPE_CHECKING:
    from scancache.dns.cache import DNSCache
    from scancache.dns.result import DNSResult

__all__ = ["WildcardDetector", "PROBES"]

#: Random labels asked per parent zone and type (round-robin wildcards answer differently each time).
PROBES = 3
_MEMO_MAX = 65536


class WildcardDetector:
    """Flags DNSResults whose records are all answers of their parent zone's wildcard."""

    def __init__(self, dns: DNSCache, probes: int = PROBES) -> None:
        self.dns = dns
        self.probes = probes
        self._flights = AsyncSingleFlight()
        self._memo: dict[str, tuple[frozenset[str], float]] = {}  # key -> (set, expires at)
        self.probes_sent = 0
        self.flagged = 0

    async def check(self, result: DNSResult) -> bool:
        """Set and return result.wildcard; only positive answers under a parent can be wildcards."""
        if result.status != "NOERROR" or not result.records or result.resolver == "literal":
            return False
        key = self.dns.cache_key(result.name, result.rdtype)
        name, _, suffix = key[len(self.dns._prefix):].partition("/")
        parent = name.partition(".")[2]
        if not parent:
            return False
        wild_key = f"{self.dns._prefix}*.{parent}" + ("/" + suffix if suffix else "")
        answers = await self._wildcard_answers(wild_key, parent, result.rdtype)
        result.wildcard = bool(answers) and all(r.data in answers for r in result.records)
        self.flagged += result.wildcard
        return result.wildcard

    async def _wildcard_answers(self, key: str, parent: str, rdtype: str | None) -> frozenset[str]:
        now = self.dns._clock()
        memo = self._memo.get(key)
        if memo is not None and memo[1] > now:
            return memo[0]
        return await self._flights.call(key, self._load, key, parent, rdtype)

    async def _load(self, key: str, parent: str, rdtype: str | None) -> frozenset[str]:
        """The wildcard set of parent from the cache, else from fresh probes (then cached)."""
        cache = self.dns.cache
        entry = await cache.aget_entry(key)
        now = self.dns._clock()
        if entry is not None and not entry.is_stale:
            answers = frozenset(entry.value[0])
            self._remember(key, answers, entry.expires_at)
            return answers
        answers, ttl = await self._probe(parent, rdtype)
        if ttl is not None:
            await cache.aset(key, [sorted(answers), ttl], ttl)
            self._remember(key, answers, now + ttl)
        return answers

    async def _probe(self, parent: str, rdtype: str | None) -> tuple[frozenset[str], float | None]:
        """(union of the probes' answers, shortest clamped TTL; None when a probe failed)."""
        dns = self.dns
        qtypes = dns._qtypes[rdtype]
        answers: set[str] = set()
        ttls: list[float] = []
        for _ in range(self.probes):
            label = "wc-" + secrets.token_hex(8)  # unguessable: a zone cannot pre-answer it
            self.probes_sent += 1
            try:
                value: Any = dns._merge(await dns.upstream.lookup(f"{label}.{parent}", qtypes))
            except DNSError:
                return frozenset(answers), None  # unknown: do not flag, do not cache, ask later
            ttls.append(value[1])
            if not value[0]:
                break  # no wildcard answers this name: one negative probe settles it
            answers.update(value[0])
        return frozenset(answers), min(ttls)

    def _remember(self, key: str, answers: frozenset[str], expires_at: float) -> None:
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[key] = (answers, expires_at)
