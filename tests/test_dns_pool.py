"""A resolver pool with misbehaving members: lying, timing out and refusing resolvers.

One honest resolver, one that answers names that do not exist (and lies about real ones), one that
never answers and one that REFUSES everything, with a trusted resolver re-checking positive
answers. Every answer returned (and so cached) must be the truth, failures must be retried on
another resolver, and the bad resolvers must lose their share of the queries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from scancache import DNSCache, DNSConfig
from scancache.dns.pool import ResolverPool, read_resolvers
from scancache.prometheus import render
from scancache.testing.dns_server import LoopbackDNSServer

REAL = {f"real{i}.pool.test": f"192.0.2.{i}" for i in range(1, 21)}
LIE = "203.0.113.66"


@pytest.fixture
def servers() -> Iterator[dict[str, LoopbackDNSServer]]:
    with LoopbackDNSServer(REAL) as honest, LoopbackDNSServer(REAL) as trusted, \
            LoopbackDNSServer({"*.pool.test": LIE}) as liar, LoopbackDNSServer(REAL) as silent, \
            LoopbackDNSServer(REAL) as refuser:
        silent.drop()
        refuser.refuse()
        yield {"honest": honest, "trusted": trusted, "liar": liar, "silent": silent,
               "refuser": refuser}


def make_pool(servers, **options) -> ResolverPool:
    members = [servers[k].address for k in ("honest", "liar", "silent", "refuser")]
    return ResolverPool(members, trusted=[servers["trusted"].address], timeout_seconds=0.6,
                        attempts=3, **options)


async def test_every_answer_is_true_and_bad_resolvers_lose_their_share(servers):
    pool = make_pool(servers)
    names = [*REAL, *(f"ghost{i}.pool.test" for i in range(60))] * 3
    async with DNSCache(DNSConfig(cache_type="memory"), upstream=pool) as dns:
        async for name, result in dns.query_many(names, rdtype="A", concurrency=10):
            assert not isinstance(result, Exception), (name, result)
            if name in REAL:
                assert result.addresses == [REAL[name]], name
            else:
                assert result.status == "NXDOMAIN" and result.addresses == [], name  # no lie cached
        stats = dns.get_stats()["resolvers"]
        silent, refuser, liar = (stats[servers[k].address] for k in ("silent", "refuser", "liar"))
        assert silent["timeouts"] >= 1 and silent["answered"] == 0
        assert refuser["errors"] >= 1 and refuser["answered"] == 0
        assert liar["wrong"] >= 1
        assert stats[servers["trusted"].address]["trusted"] is True
        assert pool.counters["retried_elsewhere"] >= 2
        honest = stats[servers["honest"].address]
        assert honest["weight"] > max(silent["weight"], refuser["weight"], liar["weight"])
        assert honest["sent"] > silent["sent"] + refuser["sent"]  # scoring moved the load
        for figures in stats.values():
            assert set(figures) >= {"sent", "answered", "timeouts", "errors", "mean_latency_ms"}
        text = render({"caches": {"dns": dns.get_stats()}})
        assert f'scancache_dns_resolver_queries_total{{cache="dns",resolver="{servers["honest"].address}"}}' \
            in text
        assert "scancache_dns_resolver_timeouts_total" in text


async def test_an_unconfirmed_positive_answer_is_an_error_not_a_cache_entry(servers):
    servers["trusted"].drop()
    members = [servers["liar"].address]
    pool = ResolverPool(members, trusted=[servers["trusted"].address], timeout_seconds=0.3,
                        attempts=1)
    async with DNSCache(DNSConfig(cache_type="memory"), upstream=pool) as dns:
        with pytest.raises(Exception, match="unconfirmed"):
            await dns.resolve("ghost.pool.test", "A")
        assert dns.get_stats()["size"] == 0


async def test_per_resolver_rate_limit_holds_lookups_back(servers):
    pool = ResolverPool([servers["honest"].address], resolver_rate=10.0)
    async with DNSCache(DNSConfig(cache_type="memory"), upstream=pool) as dns:
        started = time.monotonic()
        await asyncio.gather(*(dns.resolve(f"r{i}.pool.test", "A") for i in range(30)))
        elapsed = time.monotonic() - started
    # 10 tokens to start with, then 10 a second: the other 20 lookups wait about 2 s in all.
    assert elapsed >= 1.5
    assert servers["honest"].total_queries == 30


def test_resolvers_file_lines():
    lines = ["# public resolvers", "192.0.2.53", "192.0.2.54:5353  # a comment", "", "192.0.2.53",
             "[2001:db8::53]:53"]
    assert read_resolvers(lines) == ["192.0.2.53:53", "192.0.2.54:5353", "[2001:db8::53]:53"]
    with pytest.raises(ValueError, match="line 2"):
        read_resolvers(["192.0.2.1", "not-an-ip"])
