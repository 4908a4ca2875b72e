"""Switched DNS upstreams never share answers; every input line of `resolve -i` is accounted for.

Two loopback nameservers give different answers for the same names. A cache shared between them
(one Cache object, or one disk cache across processes) must return each server's own answers: an
answer from one nameserver set served when another is asked is a poisoned answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scancache import CacheConfig, CacheType, DNSCache, DNSConfig
from scancache.cache.core import Cache
from scancache.dns.cache import source_id
from scancache.testing.dns_server import LoopbackDNSServer
from support import cli_env, run_cli


@pytest.fixture
def honest() -> Iterator[LoopbackDNSServer]:
    with LoopbackDNSServer({"bank.test": "192.0.2.10", "localhost": "192.0.2.10"}, ttl=300) as server:
        yield server


@pytest.fixture
def liar() -> Iterator[LoopbackDNSServer]:
    with LoopbackDNSServer({"bank.test": "203.0.113.66", "localhost": "203.0.113.66",
                            "ghost.test": "203.0.113.66"}, ttl=300) as server:
        yield server


async def test_a_shared_cache_keeps_each_nameservers_answers_apart(honest, liar):
    shared = Cache(DNSConfig(cache_type=CacheType.MEMORY, namespace="dns"))
    lying = DNSCache(DNSConfig(), nameservers=[liar.address], cache=shared)
    trusted = DNSCache(DNSConfig(), nameservers=[honest.address], cache=shared)
    try:
        assert await lying.resolve("bank.test", "A") == ["203.0.113.66"]
        assert await trusted.resolve("bank.test", "A") == ["192.0.2.10"]
        assert honest.query_count("bank.test", "A") == 1  # asked, not served the liar's answer
        assert await lying.resolve("bank.test", "A") == ["203.0.113.66"]  # each keeps its own
        assert liar.query_count("bank.test", "A") == 1
        assert shared.get_stats()["size"] == 2
    finally:
        await lying.aclose()
        await trusted.aclose()
        shared.close()


async def test_negative_answers_are_keyed_by_source_too(honest, liar):
    shared = Cache(DNSConfig(cache_type=CacheType.MEMORY, namespace="dns"))
    trusted = DNSCache(DNSConfig(), nameservers=[honest.address], cache=shared)
    lying = DNSCache(DNSConfig(), nameservers=[liar.address], cache=shared)
    try:
        assert (await trusted.query("ghost.test", "A")).status == "NXDOMAIN"
        assert await lying.resolve("ghost.test", "A") == ["203.0.113.66"]
        assert liar.query_count("ghost.test", "A") == 1
    finally:
        await lying.aclose()
        await trusted.aclose()
        shared.close()


async def test_switching_nameservers_on_one_disk_cache(honest, liar, tmp_path: Path):
    config = DNSConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path))
    async with DNSCache(config, nameservers=[liar.address]) as dns:
        assert await dns.resolve("bank.test", "A") == ["203.0.113.66"]
    async with DNSCache(config, nameservers=[honest.address]) as dns:
        assert await dns.resolve("bank.test", "A") == ["192.0.2.10"]
        assert honest.query_count("bank.test", "A") == 1
    async with DNSCache(config, nameservers=[liar.address]) as dns:  # its own answer, from disk
        assert await dns.resolve("bank.test", "A") == ["203.0.113.66"]
        assert liar.query_count("bank.test", "A") == 1


async def test_the_system_resolver_is_a_source_of_its_own(liar, monkeypatch):
    monkeypatch.delenv("SCANCACHE_DNS_NAMESERVERS", raising=False)
    shared = Cache(DNSConfig(cache_type=CacheType.MEMORY, namespace="dns"))
    lying = DNSCache(DNSConfig(), nameservers=[liar.address], cache=shared)
    system = DNSCache(DNSConfig(), cache=shared)
    try:
        assert await lying.resolve("localhost", "A") == ["203.0.113.66"]
        assert "203.0.113.66" not in await system.resolve("localhost", "A")
        assert system.source == "system" and lying.source != "system"
    finally:
        await lying.aclose()
        await system.aclose()
        shared.close()


def test_source_is_the_set_of_nameservers_not_their_order_or_spelling():
    a, b = ("127.0.0.1", 5301), ("127.0.0.1", 5302)
    assert source_id([a, b]) == source_id([b, a]) == source_id([a, b, a])
    assert source_id([a]) != source_id([b]) != source_id([a, b])
    assert source_id([("::1", 53)]) != source_id([("0.0.0.1", 53)])
    assert source_id(None) == source_id([]) == "system"
    one = DNSCache(CacheConfig(), nameservers=["127.0.0.1:5301", "127.0.0.1:5302"])
    other = DNSCache(CacheConfig(), nameservers=["127.0.0.1:5302", "127.0.0.1:5301"])
    assert one.cache_key("Bank.TEST.", "a") == other.cache_key("bank.test", "A")
    one.close()
    other.close()


async def test_plugged_in_upstreams_are_keyed_by_their_source_attribute():
    from scancache.dns.resolver import Resolution

    class Fixed:
        def __init__(self, source: str, address: str) -> None:
            self.source, self.address, self.counters = source, address, {}

        async def lookup(self, name, qtypes):
            return [Resolution([self.address], 60) for _ in qtypes]

        def close(self) -> None:
            pass

    shared = Cache(DNSConfig(cache_type=CacheType.MEMORY, namespace="dns"))
    first = DNSCache(DNSConfig(), cache=shared, upstream=Fixed("one", "192.0.2.1"))
    second = DNSCache(DNSConfig(), cache=shared, upstream=Fixed("two", "192.0.2.2"))
    assert await first.resolve("x.test", "A") == ["192.0.2.1"]
    assert await second.resolve("x.test", "A") == ["192.0.2.2"]
    shared.close()


# ------------------------------------------------------------------ the command line
def test_cli_switching_nameserver_never_reuses_the_other_servers_answers(honest, liar,
                                                                       tmp_path: Path):
    env = cli_env(tmp_path / "cache")
    first = run_cli("resolve", "--rdtype", "A", "--nameserver", liar.address, "bank.test", env=env)
    assert json.loads(first.stdout)["addresses"] == ["203.0.113.66"]
    second = run_cli("resolve", "--rdtype", "A", "--nameserver", honest.address, "bank.test", env=env)
    row = json.loads(second.stdout)
    assert row["addresses"] == ["192.0.2.10"] and row["cached"] is False
    assert honest.query_count("bank.test") == 1


def test_cli_tells_nxdomain_from_nodata(honest, tmp_path: Path):
    honest.nodata("empty.test")
    env = cli_env(tmp_path / "cache")
    done = run_cli("resolve", "--nameserver", honest.address, "empty.test", "missing.test",
                   "bank.test", env=env)
    assert done.returncode == 0, done.stderr  # no record is an answer, not a failure
    rows = {row["host"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["missing.test"]["status"] == "NXDOMAIN" and rows["missing.test"]["answers"] == []
    assert rows["empty.test"]["status"] == "NOERROR" and rows["empty.test"]["answers"] == []
    assert rows["bank.test"]["status"] == "NOERROR" and rows["bank.test"]["answers"]
    again = run_cli("resolve", "--nameserver", honest.address, "empty.test", "missing.test", env=env)
    cached = {row["host"]: row for row in map(json.loads, again.stdout.splitlines())}
    assert cached["missing.test"]["status"] == "NXDOMAIN" and cached["missing.test"]["cached"]
    assert cached["empty.test"]["status"] == "NOERROR" and cached["empty.test"]["cached"]


def test_cli_bad_line_in_names_file_is_reported_and_the_run_goes_on(honest, tmp_path: Path):
    names = tmp_path / "names.txt"
    names.write_text("bank.test\nbad..name\n\n# comment\n" + "x" * 70 + ".test\nlocalhost\n")
    env = cli_env(tmp_path / "cache")
    done = run_cli("resolve", "-i", str(names), "--rdtype", "A", "--nameserver", honest.address,
                   env=env)
    assert done.returncode == 1  # something was wrong with the input: never a silent success
    assert "Traceback" not in done.stderr
    assert f"{names}:2: bad host name 'bad..name'" in done.stderr
    assert f"{names}:5: bad host name" in done.stderr
    rows = {row["host"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["bank.test"]["addresses"] == ["192.0.2.10"]
    assert rows["localhost"]["addresses"] == ["192.0.2.10"]
    assert rows["bad..name"]["status"] == "INVALID" and ":2:" in rows["bad..name"]["error"]
    assert len(rows) == 4
    assert honest.total_queries == 2  # the bad names were never sent
