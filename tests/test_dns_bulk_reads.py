"""Bulk DNS runs read the cache a batch at a time (issue 19): one get_many per batch of names, only
the names the cache cannot answer fresh go upstream one by one, and every policy (TTL left, stale,
negative answers, keys per resolver set) is the one a single lookup applies."""

from __future__ import annotations

import json
import random

import pytest

from scancache.cache.core import Cache
from scancache.cache_config import CacheConfig
from scancache.dns.bulk import BATCH_SIZE, stream_batches
from scancache.dns.cache import DNSCache
from scancache.dns.config import DNSConfig
from scancache.dns.result import DNSResult, Record, cached_row_json
from scancache.testing.dns_server import LoopbackDNSServer


def _address(i: int) -> str:
    return f"192.0.2.{i % 250 + 1}"


@pytest.mark.parametrize("cache_type", ["disk", "memory"])
def test_get_entries_returns_fresh_and_stale_entries_with_their_times(tmp_path, cache_type):
    now = [1000.0]
    cache = Cache(CacheConfig(cache_type=cache_type, cache_dir=str(tmp_path), stale_ttl_seconds=0),
                  clock=lambda: now[0])
    try:
        cache.set("fresh", [1], 100)
        cache.set("stale", [2], 10, stale_ttl=100)
        cache.set("gone", [3], 10, stale_ttl=5)
        now[0] += 20
        entries = cache.get_entries(["fresh", "stale", "gone", "absent", "fresh"])
        assert set(entries) == {"fresh", "stale"}
        assert entries["fresh"].value == [1] and not entries["fresh"].is_stale
        assert entries["fresh"].expires_at == pytest.approx(1100.0)
        assert entries["stale"].value == [2] and entries["stale"].is_stale
        assert entries["stale"].stale_until == pytest.approx(1110.0)
        stats = cache.get_stats()
        assert (stats["hits"], stats["stale_hits"]) == (2, 1)
        assert stats["misses"] == 2  # "gone" (expired past its stale window) and "absent"
    finally:
        cache.close()


async def test_warm_bulk_run_on_disk_reads_one_batch_of_keys_at_a_time(tmp_path, sqlite_statements):
    names = [f"host{i}.bulk.test" for i in range(2 * BATCH_SIZE + 7)]
    config = DNSConfig(cache_type="disk", cache_dir=str(tmp_path / "cache"), timeout_seconds=30.0)
    with LoopbackDNSServer({name: _address(i) for i, name in enumerate(names)}) as server:
        async with DNSCache(config, nameservers=[server.address]) as dns:
            cold = {name: result async for name, result in dns.resolve_many(names, rdtype="A")}
            assert dns.cache.stats.misses == len(names)  # each miss counted once, not per read
        assert len(sqlite_statements.reads()) == 3  # a cold run too: no second read per miss
        server.reset_counts()
        sqlite_statements.clear()
        async with DNSCache(config, nameservers=[server.address]) as dns:
            warm = {name: result async for name, result in dns.resolve_many(names, rdtype="A")}
            queries = {name: result async for name, result in dns.query_many(names, rdtype="A")}
            assert dns.cache.stats.hits == 2 * len(names)
        assert warm == cold == {name: [_address(i)] for i, name in enumerate(names)}
        assert all(result.cached and result.addresses == cold[name] for name, result in queries.items())
        reads = sqlite_statements.reads()
        assert len(reads) == 2 * 3  # one SELECT per batch of 500 names, none per name
        assert all(" IN (" in read for read in reads)
        assert sum(server.query_count(name) for name in names) == 0


async def test_cached_answers_keep_single_lookup_policy(make_dns, dns_server, dns_clock):
    dns_server.set_records("short.test", "A", ["192.0.2.7"], ttl=60)
    dns_server.set_records("long.test", "A", ["192.0.2.8"], ttl=300)
    dns = make_dns()
    assert await dns.resolve("short.test", "A") == ["192.0.2.7"]
    assert await dns.resolve("long.test", "A") == ["192.0.2.8"]
    dns_clock.advance(100)  # short.test is now stale, long.test has 200 s left
    negative = await dns.query("nothing.test", "MX")  # a negative answer, cached
    batch = [("short.test", "A"), ("long.test", "A"), ("LONG.test.", "A"), ("nothing.test", "MX"),
             ("bad..name", "A"), ("long.test", "NOTATYPE"), ("192.0.2.1", "A"), ("unknown.test", "A")]
    results = await dns.query_cached(batch)
    assert results[0] is None  # stale: left for query(), which refreshes or serves stale
    assert results[1].addresses == ["192.0.2.8"] and results[1].cached
    assert results[1].records[0].ttl == 200  # the TTL it has left, as query() reports it
    assert results[2].name == "LONG.test." and results[2].addresses == ["192.0.2.8"]
    assert results[3].status in ("NXDOMAIN", "NOERROR") and results[3].records == []
    assert results[3].as_dict() == {**negative.as_dict(), "cached": True}
    assert results[4] is None and results[5] is None  # invalid: query() raises the ValueError
    assert results[6].resolver == "literal" and results[6].addresses == ["192.0.2.1"]
    assert results[7] is None  # never asked: nothing is sent upstream for it here
    assert dns_server.query_count("unknown.test") == 0
    assert await dns.resolve_cached(["long.test", "short.test", "192.0.2.1"], "A") == [
        ["192.0.2.8"], None, ["192.0.2.1"]]


async def test_cached_answers_are_kept_per_resolver_set(tmp_path):
    config = DNSConfig(cache_type="disk", cache_dir=str(tmp_path / "cache"), timeout_seconds=5.0)
    with LoopbackDNSServer({"shared.test": "192.0.2.1"}) as honest, \
            LoopbackDNSServer({"shared.test": "203.0.113.66"}) as liar:
        async with DNSCache(config, nameservers=[liar.address]) as dns:
            assert [r async for r in dns.resolve_many(["shared.test"], rdtype="A")] == [
                ("shared.test", ["203.0.113.66"])]
        async with DNSCache(config, nameservers=[honest.address]) as dns:
            assert await dns.resolve_cached(["shared.test"], "A") == [None]
            assert [r async for r in dns.resolve_many(["shared.test"], rdtype="A")] == [
                ("shared.test", ["192.0.2.1"])]


async def test_stale_entries_in_a_bulk_run_are_refreshed_as_by_resolve(make_dns, dns_server, dns_clock):
    dns_server.set_records("old.test", "A", ["192.0.2.9"], ttl=60)
    dns = make_dns()
    assert await dns.resolve("old.test", "A") == ["192.0.2.9"]
    dns_server.set_records("old.test", "A", ["192.0.2.10"], ttl=60)
    dns_clock.advance(61)
    assert [r async for r in dns.resolve_many(["old.test"], rdtype="A")] == [
        ("old.test", ["192.0.2.10"])]
    dns_server.servfail("old.test")
    dns_clock.advance(61)
    assert [r async for r in dns.resolve_many(["old.test"], rdtype="A")] == [
        ("old.test", ["192.0.2.10"])]  # upstream fails: the stale answer is served
    assert dns.stale_served == 1


async def test_stream_reads_input_only_as_far_as_the_consumer_keeps_up():
    taken = [0]

    def items():
        for i in range(100_000):
            taken[0] += 1
            yield i

    async def lookup(item):
        return item

    async def cached(batch):
        return [(item, item) for item in batch], []

    seen = 0
    async for batch in stream_batches(lookup, items(), concurrency=256, cached=cached):
        seen += len(batch)
        if seen >= 3 * BATCH_SIZE:
            break
    assert taken[0] <= 8 * BATCH_SIZE  # bounded read-ahead, not the whole input


async def test_stream_answers_each_item_once_in_batches_and_lookups():
    async def lookup(item):
        return -item

    async def cached(batch):
        return [(item, item) for item in batch if item % 3 == 0], [i for i in batch if i % 3]

    results = {}
    async for batch in stream_batches(lookup, iter(range(5000)), concurrency=7, cached=cached):
        for item, result in batch:
            assert item not in results
            results[item] = result
    assert results == {i: (i if i % 3 == 0 else -i) for i in range(5000)}


def _random_result(rng: random.Random) -> DNSResult:
    alphabet = "ab.-_\"\\\u00e9\u2028\x01Z9"
    text = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))  # noqa: E731
    kind = rng.choice([None, "A", "AAAA", "MX", "TXT", "TYPE65"])
    records = [Record(rng.choice(["A", "AAAA", "CNAME", "MX", "TXT"]), text(), rng.randint(0, 10**6))
               for _ in range(rng.randint(0, 4))]
    return DNSResult(text(), kind, rng.choice(["NOERROR", "NXDOMAIN", text()]), records,
                     cached=rng.random() < 0.5, resolver=text(), wildcard=rng.choice([None, True, False]),
                     extra={"note": text()} if rng.random() < 0.1 else {})


def test_json_line_of_a_result_is_exactly_json_dumps_of_its_dict():
    rng = random.Random(19)
    for _ in range(3000):
        result = _random_result(rng)
        assert result.as_json() == json.dumps(result.as_dict())


def test_cached_row_json_is_the_json_line_of_the_result_it_stands_for():
    rng = random.Random(1919)
    alphabet = "ab.:-_\"\\\u00e9\u2028\x01Z9"
    text = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))  # noqa: E731
    for _ in range(3000):
        name, status, resolver = text(), rng.choice(["NOERROR", "NXDOMAIN", text()]), text()
        kind = rng.choice([None, "A", "AAAA", "MX", "TXT", "TYPE65", "X" + text()])
        data, ttl, cached = [text() for _ in range(rng.randint(0, 4))], rng.randint(0, 10**6), \
            rng.random() < 0.5
        records = [Record(kind if kind is not None else "AAAA" if ":" in item else "A", item, ttl)
                   for item in data]
        result = DNSResult(name, kind, status, records, cached=cached, resolver=resolver)
        line = cached_row_json(name, kind, status, data, ttl, resolver, cached)
        assert line == result.as_json() == json.dumps(result.as_dict())


async def test_cached_json_rows_are_the_cached_results_json_lines(make_dns, dns_server, dns_clock):
    dns_server.set_records("short.test", "A", ["192.0.2.7"], ttl=60)
    dns_server.set_records("both.test", "A", ["192.0.2.8", "192.0.2.9"], ttl=300)
    dns_server.set_records("both.test", "AAAA", ["2001:db8::8"], ttl=300)
    dns_server.set_records("mail.test", "MX", ["10 mx.mail.test."], ttl=300)
    dns = make_dns()
    await dns.query("short.test", "A")
    await dns.query("both.test")
    await dns.query("both.test", "AAAA")
    await dns.query("mail.test", "MX")
    dns_clock.advance(100)  # short.test is now stale: left for query(), in both forms
    await dns.query("nothing.test", "TXT")  # a negative answer, cached
    batch = [("short.test", "A"), ("both.test", None), ("BOTH.test.", "AAAA"), ("mail.test", "MX"),
             ("nothing.test", "TXT"), ("bad..name", "A"), ("both.test", "NOTATYPE"),
             ("192.0.2.1", "A"), ("2001:db8::1", None), ("unknown.test", "A")]
    results = await dns.query_cached(batch)
    rows = await dns.query_cached_json(batch)
    assert [r is None for r in rows] == [r is None for r in results] == [
        True, False, False, False, False, True, True, False, False, True]
    assert rows == [None if r is None else r.as_json() for r in results]
    assert json.loads(rows[1])["answers"][0]["ttl"] == 200  # the TTL it has left


async def test_a_name_met_again_after_its_answer_was_stored_is_not_asked_again(tmp_path):
    names = [f"host{i}.bulk.test" for i in range(BATCH_SIZE + 100)]
    repeated = names[:BATCH_SIZE - 50] + names[:3] + names[BATCH_SIZE - 50:] + names[:3]
    config = DNSConfig(cache_type="disk", cache_dir=str(tmp_path / "cache"), timeout_seconds=30.0)
    with LoopbackDNSServer({name: _address(i) for i, name in enumerate(names)}) as server:
        async with DNSCache(config, nameservers=[server.address]) as dns:
            results = [r async for r in dns.resolve_many(repeated, rdtype="A", concurrency=1)]
            assert not dns._absent  # nothing left behind by the run
        assert sorted(results) == sorted((name, [_address(names.index(name))]) for name in repeated)
        # the first three were stored (batches of 256) long before they came again, in the
        # batch that first read them and in the next one: each was asked once
        assert [server.query_count(name) for name in names] == [1] * len(names)


def test_bulk_commands_raise_the_gc_threshold_only_while_they_run():
    import gc

    from scancache.cli._common import few_gc_passes

    before = gc.get_threshold()
    with pytest.raises(KeyboardInterrupt), few_gc_passes():
        assert gc.get_threshold() == (100_000, *before[1:])
        raise KeyboardInterrupt
    assert gc.get_threshold() == before
