"""ResolverPool: many public resolvers as one upstream, scored by how well each one behaves.

Recon runs spread queries over hundreds of resolvers that lie, time out, refuse and rate-limit
(dnsx#708, trickest/resolvers#15). Each lookup goes to a resolver drawn by weight; a timeout,
SERVFAIL or REFUSED counts against that resolver and the lookup is retried on another one. A
resolver's weight is its recent success ratio (answers over queries, decayed so it can recover;
a wrong answer counts as ten failures), never below a floor, so a bad resolver is still probed
now and then and comes back when it heals. Rate limits: queries per second per resolver and for
the whole pool (token buckets; a lookup waits for a token rather than overrunning a resolver).

With trusted resolvers (puredns' model), every positive answer from an untrusted resolver is
asked again of a trusted one before it is returned (and so before it is cached); when they
disagree the trusted answer wins and the untrusted resolver is marked wrong.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from scancache.dns.resolver import NameserverUpstream, Resolution
from scancache.errors import DNSError

__all__ = ["ResolverPool", "ResolverStats", "read_resolvers"]

_DECAY = 0.98  # each outcome keeps 98% of the history: weights follow the last ~50 queries
_FLOOR = 0.02  # a resolver that fails everything still gets a probe now and then
_WRONG_PENALTY = 10.0


class _Bucket:
    """A token bucket: `rate` tokens a second, at most `rate` (one second of burst)."""

    __slots__ = ("rate", "stamp", "tokens")

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.tokens = rate or 0.0
        self.stamp = time.monotonic()

    def wait_for_token(self, now: float) -> float:
        """0 and a token taken, or the seconds until one is free (none taken)."""
        if self.rate is None:
            return 0.0
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class ResolverStats:
    """One resolver's counters and health: sent, answered, timeouts, errors, wrong, latency."""

    __slots__ = ("address", "answered", "bucket", "errors", "good", "latency_total", "sent",
                 "timeouts", "total", "trusted", "upstream", "wrong")

    def __init__(self, address: str, upstream: NameserverUpstream, rate: float | None,
                 trusted: bool = False) -> None:
        self.address = address
        self.upstream = upstream
        self.bucket = _Bucket(rate)
        self.trusted = trusted
        self.sent = self.answered = self.timeouts = self.errors = self.wrong = 0
        self.latency_total = 0.0
        self.good = 1.0  # decayed successes and attempts: weight = good / total
        self.total = 1.0

    @property
    def weight(self) -> float:
        """How likely this resolver is to be picked: its decayed success ratio, floored."""
        return max(self.good / self.total, _FLOOR)

    def record(self, success: float, failure: float = 0.0) -> None:
        self.good = self.good * _DECAY + success
        self.total = self.total * _DECAY + success + failure

    def as_dict(self) -> dict[str, Any]:
        answered = self.answered
        return {"sent": self.sent, "answered": answered, "timeouts": self.timeouts,
                "errors": self.errors, "wrong": self.wrong,
                "mean_latency_ms": round(1000 * self.latency_total / answered, 3) if answered else 0.0,
                "weight": round(self.weight, 4), "trusted": self.trusted}


def read_resolvers(lines: list[str]) -> list[str]:
    """The "ip[:port]" entries of a resolvers file's lines ('#' comments, blanks skipped)."""
    from scancache.dns.config import parse_nameserver

    servers = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            host, port = parse_nameserver(text)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        servers.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return list(dict.fromkeys(servers))


class ResolverPool:
    """An Upstream over many resolvers with scoring, retries, rate limits and trusted re-checks."""

    def __init__(self, resolvers: list[str], *, trusted: list[str] | None = None,
                 timeout_seconds: float = 2.0, attempts: int = 3,
                 resolver_rate: float | None = None, rate: float | None = None,
                 rng: random.Random | None = None) -> None:
        from scancache.dns.cache import source_id
        from scancache.dns.config import parse_nameserver

        if not resolvers:
            raise ValueError("a resolver pool needs at least one resolver")
        self.attempts = attempts
        self._rng = rng or random.Random()
        per_try = timeout_seconds / attempts  # each resolver gets one send: retries go elsewhere
        self.resolvers = [ResolverStats(text, NameserverUpstream([parse_nameserver(text)],
                                                                timeout_seconds=per_try, attempts=1),
                                        resolver_rate) for text in resolvers]
        self.trusted = [ResolverStats(text, NameserverUpstream([parse_nameserver(text)],
                                                              timeout_seconds=timeout_seconds,
                                                              attempts=attempts),
                                      None, trusted=True) for text in trusted or []]
        self._global = _Bucket(rate)
        addresses = [parse_nameserver(t) for t in [*resolvers, *(trusted or [])]]
        self.source = "pool-" + source_id(addresses)[3:]
        self.counters = {"upstream_lookups": 0, "servfails": 0, "refused": 0, "nxdomain": 0,
                         "nodata": 0, "retried_elsewhere": 0, "trusted_checks": 0,
                         "trusted_disagreed": 0}

    # ------------------------------------------------------------------ choosing
    async def _take(self, exclude: set[int]) -> int:
        """Index of a resolver drawn by weight that has a token (waits for one if needed)."""
        while True:
            now = time.monotonic()
            wait = self._global.wait_for_token(now)
            if wait:
                await asyncio.sleep(wait)
                continue
            candidates = [i for i in range(len(self.resolvers)) if i not in exclude] or \
                list(range(len(self.resolvers)))
            weights = [self.resolvers[i].weight for i in candidates]
            order = self._rng.choices(candidates, weights, k=min(4, len(candidates)))
            soonest = None
            for index in order:
                wait = self.resolvers[index].bucket.wait_for_token(now)
                if not wait:
                    return index
                soonest = wait if soonest is None else min(soonest, wait)
            self._global.tokens += 1.0  # not used: give the global token back
            await asyncio.sleep(soonest or 0.001)

    # ------------------------------------------------------------------ lookups
    async def lookup(self, name: str, qtypes: tuple[int, ...]) -> list[Resolution | DNSError]:
        """Ask resolvers by weight until one answers (NOERROR/NXDOMAIN) or attempts run out."""
        self.counters["upstream_lookups"] += 1
        tried: set[int] = set()
        results: list[Resolution | DNSError] = []
        for attempt in range(self.attempts):
            index = await self._take(tried)
            tried.add(index)
            resolver = self.resolvers[index]
            resolver.sent += 1
            started = time.monotonic()
            results = await resolver.upstream.lookup(name, qtypes)
            failure = next((r.reason for r in results if isinstance(r, DNSError)), None)
            if failure is None:
                resolver.answered += 1
                resolver.latency_total += time.monotonic() - started
                resolver.record(1.0)
                if self.trusted and any(isinstance(r, Resolution) and r.addresses for r in results):
                    results = await self._verify(resolver, name, qtypes, results)
                self._count(results)
                return results
            if failure == "timeout":
                resolver.timeouts += 1
            else:
                resolver.errors += 1
            resolver.record(0.0, 1.0)
            if attempt + 1 < self.attempts:
                self.counters["retried_elsewhere"] += 1
        self._count(results)
        return results

    async def _verify(self, resolver: ResolverStats, name: str, qtypes: tuple[int, ...],
                      results: list[Resolution | DNSError]) -> list[Resolution | DNSError]:
        """The trusted resolver's answer when it disagrees with the untrusted one's, else results."""
        self.counters["trusted_checks"] += 1
        judge = self.trusted[self._rng.randrange(len(self.trusted))]
        judge.sent += 1
        started = time.monotonic()
        verdict = await judge.upstream.lookup(name, qtypes)
        if any(isinstance(r, DNSError) for r in verdict):
            judge.timeouts += 1
            # Unconfirmed: never pass the untrusted positive answer on to be cached.
            return [DNSError(name, "unconfirmed: trusted resolver did not answer")] * len(qtypes)
        judge.answered += 1
        judge.latency_total += time.monotonic() - started
        if [_answer_set(r) for r in verdict] != [_answer_set(r) for r in results]:
            self.counters["trusted_disagreed"] += 1
            resolver.wrong += 1
            resolver.record(0.0, _WRONG_PENALTY)
        return verdict

    def _count(self, results: list[Resolution | DNSError]) -> None:
        counters = self.counters
        for result in results:
            if isinstance(result, DNSError):
                if result.reason == "SERVFAIL":
                    counters["servfails"] += 1
                elif result.reason == "REFUSED":
                    counters["refused"] += 1
            elif not result.addresses:
                counters["nxdomain" if result.negative == "NXDOMAIN" else "nodata"] += 1

    # ------------------------------------------------------------------ stats and lifecycle
    def client_counters(self) -> dict[str, int]:
        """Wire-level counters summed over every resolver (as NameserverUpstream's)."""
        totals: dict[str, int] = {}
        for resolver in [*self.resolvers, *self.trusted]:
            for key, value in resolver.upstream.client_counters().items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def resolver_stats(self) -> dict[str, dict[str, Any]]:
        """Per resolver: sent, answered, timeouts, errors, wrong, mean_latency_ms, weight, trusted."""
        return {r.address: r.as_dict() for r in [*self.resolvers, *self.trusted]}

    def close(self) -> None:
        """Close every resolver's sockets."""
        for resolver in [*self.resolvers, *self.trusted]:
            resolver.upstream.close()


def _answer_set(result: Resolution | DNSError) -> tuple[str, frozenset[str]]:
    if isinstance(result, DNSError):
        return ("error", frozenset())
    return (result.negative or "NOERROR", frozenset(result.addresses))
