"""DNSCache as users meet it: the seed example, config handling, system resolver, disk backend, bulk."""

from __future__ import annotations

import asyncio

import pytest

from scancache import CacheConfig, CacheType, DNSCache, DNSConfig, DNSError
from scancache.cache.core import Cache
from scancache.dns.cache import as_dns_config


async def test_seed_example_with_nameservers_from_environment(dns_server, monkeypatch):
    monkeypatch.setenv("SCANCACHE_DNS_NAMESERVERS", dns_server.address)
    dns_server.set_records("google.com", "A", ["192.0.2.200"])
    config = CacheConfig(cache_type=CacheType.MEMORY, max_size=100, ttl_seconds=3600)
    dns_cache = DNSCache(config)
    try:
        ips = await dns_cache.resolve("google.com")
        cached_ips = await dns_cache.resolve("google.com")  # Cache hit
        assert ips == cached_ips == ["192.0.2.200"]
        stats = dns_cache.get_stats()
        assert f"{stats['hit_rate']:.2%}" == "50.00%"
        for key in ("hits", "misses", "hit_rate", "size", "evictions", "upstream_queries", "timeouts",
                    "servfails", "nxdomain", "coalesced", "prefetches", "stale_served"):
            assert key in stats
        assert stats["hits"] == 1 and stats["size"] == 1 and stats["upstream_queries"] == 2
        assert dns_server.query_count("google.com") == 2  # A and AAAA, once each
    finally:
        await dns_cache.aclose()


def test_plain_cache_config_becomes_dns_config():
    config = as_dns_config(CacheConfig(max_size=100, ttl_seconds=600))
    assert isinstance(config, DNSConfig)
    assert config.max_size == 100 and config.ttl_seconds == 600
    assert config.namespace == "dns"
    assert config.stale_ttl_seconds == DNSConfig.stale_ttl_seconds  # DNS default, not 0
    assert as_dns_config(CacheConfig(ttl_seconds=2)).min_ttl_seconds == 2
    assert as_dns_config(DNSConfig(namespace="mine")).namespace == "mine"
    with pytest.raises(TypeError):
        as_dns_config({"max_size": 1})


def test_bad_nameserver_is_a_value_error():
    with pytest.raises(ValueError):
        DNSCache(DNSConfig(), nameservers=["not-an-ip"])


async def test_system_resolver_for_localhost(monkeypatch):
    monkeypatch.delenv("SCANCACHE_DNS_NAMESERVERS", raising=False)
    async with DNSCache(DNSConfig(ttl_seconds=120, min_ttl_seconds=1)) as dns:
        addresses = await dns.resolve("localhost")
        assert addresses and set(addresses) <= {"127.0.0.1", "::1"}
        assert await dns.resolve("LOCALHOST.") == addresses
        stats = dns.get_stats()
        assert stats["nameservers"] == ["system"]
        assert stats["upstream_queries"] == 1 and stats["hits"] == 1
        entry = dns.cache.get_entry(dns.cache_key("localhost"))
        assert entry.ttl_remaining(dns.cache.clock()) == pytest.approx(120, abs=1)  # no TTL: default


async def test_disk_backend_persists_answers(dns_server, tmp_path, dns_clock):
    pytest.importorskip("scancache.cache.sqlite")
    config = DNSConfig(cache_type=CacheType.DISK, cache_dir=tmp_path, max_size=100)
    dns_server.set_records("disk.test", "A", ["192.0.2.210"], ttl=600)
    async with DNSCache(config, nameservers=[dns_server.address], clock=dns_clock) as dns:
        assert await dns.resolve("disk.test", "A") == ["192.0.2.210"]
        assert await dns.resolve("nope.test", "A") == []
    async with DNSCache(config, nameservers=[dns_server.address], clock=dns_clock) as again:
        assert await again.resolve("disk.test", "A") == ["192.0.2.210"]
        assert await again.resolve("nope.test", "A") == []
        assert dns_server.query_count("disk.test") == 1 and dns_server.query_count("nope.test") == 1
        dns_clock.advance(601)
        dns_server.servfail()
        assert await again.resolve("disk.test", "A") == ["192.0.2.210"]  # stale, from disk
        assert again.get_stats()["stale_served"] == 1


async def test_shared_cache_between_two_resolvers(dns_server):
    cache = Cache(as_dns_config(DNSConfig()))
    first = DNSCache(nameservers=[dns_server.address], cache=cache)
    second = DNSCache(nameservers=[dns_server.address], cache=cache)
    assert await first.resolve("example.test") == await second.resolve("example.test")
    assert dns_server.query_count("example.test", "A") == 1
    await first.aclose()
    await second.aclose()
    cache.close()


async def test_resolve_many_streams_results_with_progress(dns_server):
    dns_server.add("*.many.test", "A", "198.51.100.7")
    dns_server.servfail("fail.many.test")
    names = [f"host{i}.many.test" for i in range(200)] + ["fail.many.test", "bad..name"]
    seen: list[tuple[int, int]] = []
    results = {}
    async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[dns_server.address]) as dns:
        async for name, result in dns.resolve_many(names, concurrency=16, rdtype="A",
                                                   progress=lambda d, t: seen.append((d, t))):
            results[name] = result
    assert len(results) == len(names)
    assert all(results[f"host{i}.many.test"] == ["198.51.100.7"] for i in range(200))
    assert isinstance(results["fail.many.test"], DNSError)
    assert results["fail.many.test"].reason == "SERVFAIL"
    assert isinstance(results["bad..name"], DNSError)
    assert results["bad..name"].reason.startswith("invalid name")
    assert seen == [(i, len(names)) for i in range(1, len(names) + 1)]


async def test_resolve_many_stops_cleanly_when_the_consumer_breaks(dns_server):
    dns_server.add("*.stop.test", "A", "198.51.100.8")
    async with DNSCache(nameservers=[dns_server.address]) as dns:
        taken = 0
        async for _ in dns.resolve_many([f"n{i}.stop.test" for i in range(1000)], concurrency=8):
            taken += 1
            if taken == 5:
                break
        assert taken == 5
        assert dns_server.total_queries < 1000 * 2
        with pytest.raises(ValueError):
            async for _ in dns.resolve_many(["a.test"], concurrency=0):
                pass


def test_usable_from_successive_event_loops(dns_server):
    dns = DNSCache(DNSConfig(), nameservers=[dns_server.address])
    dns_server.set_records("loops.test", "A", ["192.0.2.220"], ttl=5)
    assert asyncio.run(dns.resolve("loops.test", "A")) == ["192.0.2.220"]
    assert asyncio.run(dns.resolve("example.test", "A")) == ["192.0.2.1"]  # new loop: new socket
    dns.close()


@pytest.mark.redis
async def test_redis_backend_shares_answers_between_workers(dns_server, redis_url, dns_clock):
    pytest.importorskip("scancache.cache.redis")
    config = DNSConfig(cache_type=CacheType.REDIS, redis_url=redis_url)
    dns_server.set_records("shared.test", "A", ["192.0.2.230"], ttl=120)
    async with DNSCache(config, nameservers=[dns_server.address], clock=dns_clock) as worker1, \
            DNSCache(config, nameservers=[dns_server.address], clock=dns_clock) as worker2:
        assert await worker1.resolve("shared.test", "A") == ["192.0.2.230"]
        assert await worker2.resolve("Shared.Test.", "A") == ["192.0.2.230"]
        assert await worker2.resolve("missing.test", "A") == []
        assert await worker1.resolve("missing.test", "A") == []
        assert dns_server.query_count("shared.test") == 1
        assert dns_server.query_count("missing.test") == 1
        dns_clock.advance(121)
        dns_server.servfail()
        assert await worker2.resolve("shared.test", "A") == ["192.0.2.230"]  # stale from Redis


async def test_hybrid_backend(dns_server, tmp_path):
    pytest.importorskip("scancache.cache.hybrid")
    pytest.importorskip("scancache.cache.sqlite")
    config = DNSConfig(cache_type=CacheType.HYBRID, cache_dir=tmp_path, redis_url=None)
    async with DNSCache(config, nameservers=[dns_server.address]) as dns:
        assert await dns.resolve("example.test") == ["192.0.2.1", "2001:db8::1"]
        assert await dns.resolve("example.test") == ["192.0.2.1", "2001:db8::1"]
        assert dns_server.query_count("example.test", "A") == 1
        assert dns.get_stats()["backend"] == "hybrid"
