"""Bulk DNS runs on the disk cache store their answers in batches (issue 19): every answer is stored
by the end of a run, and a run killed part-way loses only answers not yet stored, never the database."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

from scancache.dns.cache import DNSCache
from scancache.dns.config import DNSConfig
from scancache.testing.dns_server import LoopbackDNSServer


def _address(i: int) -> str:
    return f"192.0.2.{i % 250 + 1}"


def _disk(tmp_path) -> DNSConfig:
    return DNSConfig(cache_type="disk", cache_dir=str(tmp_path / "cache"), timeout_seconds=30.0)


async def test_bulk_run_on_disk_stores_every_answer_in_batches(tmp_path):
    names = [f"host{i}.bulk.test" for i in range(600)]
    with LoopbackDNSServer({name: _address(i) for i, name in enumerate(names)}) as server:
        async with DNSCache(_disk(tmp_path), nameservers=[server.address]) as dns:
            first = {name: result async for name, result in dns.resolve_many(names, rdtype="A")}
            assert dns._writes is None  # the run's gathered writes ended with it
            transactions = dns.cache.stats.sets
        assert first == {name: [_address(i)] for i, name in enumerate(names)}
        assert transactions == len(names)  # every answer stored, counted once
        server.reset_counts()
        async with DNSCache(_disk(tmp_path), nameservers=[server.address]) as dns:
            second = {name: result async for name, result in dns.resolve_many(names, rdtype="A")}
            queries = {name: result async for name, result in dns.query_many(names[:50], rdtype="A")}
        assert second == first
        assert all(result.cached for result in queries.values())
        assert sum(server.query_count(name) for name in names) == 0


async def test_single_resolve_on_disk_is_stored_before_it_returns(tmp_path):
    with LoopbackDNSServer({"one.bulk.test": "192.0.2.9"}) as server:
        async with DNSCache(_disk(tmp_path), nameservers=[server.address]) as dns:
            assert await dns.resolve("one.bulk.test", "A") == ["192.0.2.9"]
            assert dns.cache.get(dns.cache_key("one.bulk.test", "A")) is not None


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from scancache.dns.cache import DNSCache
    from scancache.dns.config import DNSConfig

    async def main(cache_dir, server, names):
        config = DNSConfig(cache_type="disk", cache_dir=cache_dir, timeout_seconds=60.0, attempts=1)
        async with DNSCache(config, nameservers=[server]) as dns:
            async for name, result in dns.resolve_many(names, rdtype="A", concurrency=16):
                print(name, flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3].split(",")))
""")


def test_killed_bulk_run_loses_only_unstored_answers(tmp_path):
    names = [f"host{i}.bulk.test" for i in range(400)]
    held = names[-8:]  # answered only after the child is killed
    config = _disk(tmp_path)
    with LoopbackDNSServer({name: _address(i) for i, name in enumerate(names)}) as server:
        for name in held:
            server.delay(600, name)
        child = subprocess.Popen([sys.executable, "-c", _CHILD, config.cache_dir, server.address,
                                  ",".join(names)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            answered = [child.stdout.readline().strip() for _ in range(len(names) - len(held))]
            os.kill(child.pid, signal.SIGKILL)  # mid-run: held names in flight, a batch maybe unstored
        finally:
            child.kill()
            child.wait(timeout=30)
        assert set(answered) == set(names) - set(held)
        for name in held:
            server.delay(0, name)
        db = sqlite3.connect(tmp_path / "cache" / "scancache.sqlite3")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            db.close()
        server.reset_counts()

        async def rerun() -> tuple[set[str], dict[str, list[str]]]:
            async with DNSCache(_disk(tmp_path), nameservers=[server.address]) as dns:
                stored = {name for name in names
                          if await dns.cache.aget(dns.cache_key(name, "A")) is not None}
                again = {name: result async for name, result in dns.resolve_many(names, rdtype="A")}
            return stored, again

        stored, again = asyncio.run(rerun())
        assert stored <= set(answered)  # nothing is stored that was never answered
        assert again == {name: [_address(i)] for i, name in enumerate(names)}  # stored values intact
        for name in names:  # the stored answers are used, the rest asked again, once each
            assert server.query_count(name) == (0 if name in stored else 1), name


async def test_name_met_again_before_its_batch_is_stored_is_not_asked_twice(tmp_path):
    names = [f"host{i}.bulk.test" for i in range(20)]
    with LoopbackDNSServer({name: _address(i) for i, name in enumerate(names)}) as server:
        async with DNSCache(_disk(tmp_path), nameservers=[server.address]) as dns:
            repeated = [name for name in names for _ in range(3)]  # each name thrice in a row
            results = [result async for _, result in
                       dns.resolve_many(repeated, rdtype="A", concurrency=1)]
        assert results == [[_address(i)] for i in range(len(names)) for _ in range(3)]
        assert all(server.query_count(name) == 1 for name in names)
