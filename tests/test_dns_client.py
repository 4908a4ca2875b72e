"""The UDP client on the wire: retries over nameservers, answer matching (ids, 0x20), cancellation."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from fixtures_dns import UDPResponder
from scancache.dns.cache import DNSCache
from scancache.dns.client import DNSClient
from scancache.dns.config import DNSConfig
from scancache.dns.names import to_wire
from scancache.errors import DNSError
from scancache.testing.dns_server import LoopbackDNSServer


class TrickyResponder(UDPResponder):
    """A loopback UDP responder that sends forged/stray packets before the real answer."""

    def __init__(self, server: LoopbackDNSServer) -> None:
        super().__init__()
        self.server = server

    def reply(self, query: bytes) -> list[bytes]:
        real = self.server.answer(query)
        assert real is not None
        wrong_id = bytes([query[0] ^ 0xFF, query[1]]) + real[2:]
        other_name = self.server.answer(query[:13] + bytes([query[13] ^ 0x01]) + query[14:])
        assert other_name is not None
        # DNS 0x20: the genuine answer echoes the question in mixed case.
        end = 12
        while real[end]:
            end += real[end] + 1
        mixed = bytes(c ^ 0x20 if 97 <= c <= 122 and random.random() < 0.5 else c
                      for c in real[12:end])
        return [wrong_id, other_name, real[:12] + mixed + real[end:]]


async def test_forged_and_stray_answers_are_ignored(dns_server):
    dns_server.set_records("victim.test", "A", ["192.0.2.1"])
    dns_server.set_records("wictim.test", "A", ["203.0.113.66"])  # the name one bit away
    with TrickyResponder(dns_server) as tricky:
        async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[tricky.address]) as dns:
            for _ in range(5):
                dns.cache.clear()
                assert await dns.resolve("victim.test", "A") == ["192.0.2.1"]


async def test_retry_rotates_to_the_next_nameserver(dns_server):
    with LoopbackDNSServer({"example.test": "192.0.2.1"}) as dead:
        dead.drop()
        config = DNSConfig(timeout_seconds=1.4, attempts=3)  # waits 0.2, 0.4, 0.8 s
        async with DNSCache(config, nameservers=[dead.address, dns_server.address]) as dns:
            start = time.monotonic()
            assert await dns.resolve("example.test", "A") == ["192.0.2.1"]
            assert time.monotonic() - start < 1.0  # answered by the second server after one retry
            assert dns.get_stats()["retries"] == 1
            assert dead.query_count("example.test", "A") == 1
            assert dns_server.query_count("example.test", "A") == 1


async def test_servfail_asks_the_next_nameserver_at_once(dns_server):
    with LoopbackDNSServer({"example.test": "192.0.2.9"}) as broken:
        broken.servfail()
        async with DNSCache(DNSConfig(timeout_seconds=5), nameservers=[broken.address,
                                                                        dns_server.address]) as dns:
            start = time.monotonic()
            assert await dns.resolve("example.test", "A") == ["192.0.2.1"]
            assert time.monotonic() - start < 0.5


async def test_timeout_spends_about_timeout_seconds(dns_server):
    dns_server.drop()
    client = DNSClient([(dns_server.host, dns_server.port)], timeout_seconds=0.3, attempts=3)
    try:
        start = time.monotonic()
        with pytest.raises(DNSError, match="timeout"):
            await client.query("example.test", 1, to_wire("example.test"))
        elapsed = time.monotonic() - start
        assert 0.25 < elapsed < 1.0
        assert dns_server.query_count("example.test", "A") == 3
        assert client.timeouts == 1 and client.retries == 2
    finally:
        client.close()


async def test_late_answer_to_first_attempt_is_accepted(dns_server):
    dns_server.delay(0.15, "slow.test")
    dns_server.set_records("slow.test", "A", ["192.0.2.5"])
    client = DNSClient([(dns_server.host, dns_server.port)], timeout_seconds=0.7, attempts=3)
    try:  # the first wait is 0.1 s: the answer to attempt 1 arrives after the retry went out
        answer = await client.query("slow.test", 1, to_wire("slow.test"))
        assert answer.addresses == ["192.0.2.5"]
        assert client.retries >= 1
    finally:
        client.close()


async def test_cancelled_caller_does_not_break_the_name(dns_server):
    dns_server.delay(0.2, "cancel.test")
    dns_server.set_records("cancel.test", "A", ["192.0.2.6"])
    async with DNSCache(DNSConfig(timeout_seconds=2), nameservers=[dns_server.address]) as dns:
        leader = asyncio.ensure_future(dns.resolve("cancel.test", "A"))
        follower = asyncio.ensure_future(dns.resolve("cancel.test", "A"))
        await asyncio.sleep(0.05)
        leader.cancel()
        assert await follower == ["192.0.2.6"]
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert await dns.resolve("cancel.test", "A") == ["192.0.2.6"]


async def test_resolve_many_with_a_slow_consumer_gets_everything(dns_server):
    dns_server.add("*.slowc.test", "A", "198.51.100.9")
    names = [f"n{i}.slowc.test" for i in range(100)]
    async with DNSCache(nameservers=[dns_server.address]) as dns:
        got = []
        async for name, result in dns.resolve_many(names, concurrency=2):
            await asyncio.sleep(0)  # let the workers run ahead and pause
            got.append((name, result))
    assert sorted(n for n, _ in got) == sorted(names)
    assert all(result == ["198.51.100.9"] for _, result in got)


async def test_aclose_cancels_background_refreshes(dns_server, dns_clock):
    dns_server.set_records("bg.test", "A", ["192.0.2.7"], ttl=100)
    dns = DNSCache(DNSConfig(), nameservers=[dns_server.address], clock=dns_clock)
    await dns.resolve("bg.test", "A")
    dns_server.delay(5, "bg.test")
    dns_clock.advance(95)
    await dns.resolve("bg.test", "A")  # starts a prefetch that will hang on the delay
    assert dns.get_stats()["refreshing"] == 1
    start = time.monotonic()
    await dns.aclose()
    assert time.monotonic() - start < 1
    assert dns.get_stats()["refreshing"] == 0
