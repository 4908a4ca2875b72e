"""DNSCache policy against a real loopback DNS server: TTLs, negative caching, errors, stale, prefetch."""

from __future__ import annotations

import asyncio
import socket

import pytest

from fixtures_dns import UDPResponder
from scancache.dns.cache import REFRESH_BACKOFF_SECONDS, DNSCache
from scancache.dns.config import DNSConfig
from scancache.errors import DNSError


def ttl_left(dns, name: str, rdtype: str = "A") -> float:
    """Seconds the cached answer of (name, rdtype) has left on dns's clock."""
    return dns.cache.get_entry(dns.cache_key(name, rdtype)).ttl_remaining(dns._clock())


async def test_answer_lives_for_its_record_ttl(make_dns, dns_server, dns_clock):
    dns_server.set_records("ttl.test", "A", ["192.0.2.10"], ttl=60)
    dns = make_dns()
    assert await dns.resolve("ttl.test", "A") == ["192.0.2.10"]
    dns_clock.advance(59)
    dns_server.set_records("ttl.test", "A", ["192.0.2.11"], ttl=60)
    assert await dns.resolve("ttl.test", "A") == ["192.0.2.10"]  # still cached
    assert dns_server.query_count("ttl.test", "A") == 1
    dns_clock.advance(2)
    assert await dns.resolve("ttl.test", "A") == ["192.0.2.11"]  # expired: asked again
    assert dns_server.query_count("ttl.test", "A") == 2


@pytest.mark.parametrize(("record_ttl", "expected"), [(1, 5), (0, 5), (100_000, 3600), (120, 120)])
async def test_record_ttl_is_clamped(make_dns, dns_server, record_ttl, expected):
    dns_server.set_records("clamp.test", "A", ["192.0.2.20"], ttl=record_ttl)
    dns = make_dns(min_ttl_seconds=5, ttl_seconds=3600)
    await dns.resolve("clamp.test", "A")
    entry = dns.cache.get_entry(dns.cache_key("clamp.test", "A"))
    assert entry is not None
    assert entry.ttl_remaining(dns._clock()) == pytest.approx(expected)


async def test_returned_list_is_a_copy(make_dns):
    dns = make_dns()
    first = await dns.resolve("example.test")
    first.append("tampered")
    assert await dns.resolve("example.test") == ["192.0.2.1", "2001:db8::1"]


@pytest.mark.parametrize("kind", ["nxdomain", "nodata"])
async def test_negative_answer_cached_for_soa_minimum(make_dns, dns_server, dns_clock, kind):
    dns_server.set_soa(minimum=30, ttl=3600)  # RFC 2308: min(SOA TTL, MINIMUM) = 30
    if kind == "nodata":
        dns_server.nodata("neg.test")
    dns = make_dns(negative_ttl_seconds=300)
    assert await dns.resolve("neg.test", "A") == []
    dns_clock.advance(29)
    assert await dns.resolve("neg.test", "A") == []
    assert dns_server.query_count("neg.test", "A") == 1
    dns_clock.advance(2)
    dns_server.set_records("neg.test", "A", ["192.0.2.30"])
    assert await dns.resolve("neg.test", "A") == ["192.0.2.30"]
    assert dns_server.query_count("neg.test", "A") == 2
    stats = dns.get_stats()
    assert stats["nxdomain" if kind == "nxdomain" else "nodata"] == 1


async def test_negative_ttl_clamped_and_soa_ttl_bounds_it(make_dns, dns_server):
    dns = make_dns(negative_ttl_seconds=120, min_ttl_seconds=5)
    dns_server.set_soa(minimum=10_000, ttl=10_000)
    await dns.resolve("gone1.test", "A")
    assert ttl_left(dns, "gone1.test") == pytest.approx(120)
    dns_server.set_soa(minimum=10_000, ttl=40)  # the SOA record's own TTL is the smaller one
    await dns.resolve("gone2.test", "A")
    assert ttl_left(dns, "gone2.test") == pytest.approx(40)


@pytest.mark.parametrize(("mode", "reason"), [("servfail", "SERVFAIL"), ("refuse", "REFUSED"),
                                              ("drop", "timeout")])
async def test_upstream_failure_without_cache_raises_dns_error(make_dns, dns_server, mode, reason):
    getattr(dns_server, mode)("broken.test")
    dns = make_dns()
    with pytest.raises(DNSError) as info:
        await dns.resolve("broken.test")
    assert info.value.name == "broken.test"
    assert info.value.reason == reason
    assert dns.cache.get_entry(dns.cache_key("broken.test")) is None


@pytest.mark.parametrize("mode", ["servfail", "drop"])
async def test_stale_served_within_window_and_not_after(make_dns, dns_server, dns_clock, mode):
    dns_server.set_records("stale.test", "A", ["192.0.2.40"], ttl=60)
    dns = make_dns(stale_ttl_seconds=600)
    assert await dns.resolve("stale.test", "A") == ["192.0.2.40"]
    getattr(dns_server, mode)("stale.test")
    dns_clock.advance(61)
    assert await dns.resolve("stale.test", "A") == ["192.0.2.40"]
    assert dns.get_stats()["stale_served"] == 1
    dns_clock.advance(600)  # now past expiry + stale window
    with pytest.raises(DNSError):
        await dns.resolve("stale.test", "A")


async def test_stale_refresh_is_bounded_and_happens_once(make_dns, dns_server, dns_clock):
    dns_server.set_records("bounded.test", "A", ["192.0.2.50"], ttl=60)
    dns = make_dns()
    await dns.resolve("bounded.test", "A")
    dns_server.servfail("bounded.test")
    dns_clock.advance(61)
    assert await dns.resolve("bounded.test", "A") == ["192.0.2.50"]  # one foreground try, failed
    assert dns_server.query_count("bounded.test", "A") == 2
    for _ in range(50):  # within the backoff: stale at once, nothing sent
        assert await dns.resolve("bounded.test", "A") == ["192.0.2.50"]
    await dns.wait_background()
    assert dns_server.query_count("bounded.test", "A") == 2
    dns_clock.advance(REFRESH_BACKOFF_SECONDS + 1)
    dns_server.heal()
    dns_server.set_records("bounded.test", "A", ["192.0.2.51"], ttl=60)
    results = await asyncio.gather(*[dns.resolve("bounded.test", "A") for _ in range(50)])
    assert results == [["192.0.2.50"]] * 50  # served stale while one refresh runs behind
    await dns.wait_background()
    assert dns_server.query_count("bounded.test", "A") == 3
    assert dns.get_stats()["background_refreshes"] == 1
    assert dns.get_stats()["stale_served"] == 101
    assert await dns.resolve("bounded.test", "A") == ["192.0.2.51"]
    assert dns_server.query_count("bounded.test", "A") == 3


async def test_prefetch_in_last_tenth_of_ttl_once(make_dns, dns_server, dns_clock):
    dns_server.set_records("pre.test", "A", ["192.0.2.60"], ttl=100)
    dns = make_dns()
    await dns.resolve("pre.test", "A")
    dns_clock.advance(89)
    await dns.resolve("pre.test", "A")
    await dns.wait_background()
    assert dns_server.query_count("pre.test", "A") == 1  # 11 s left of 100: too early
    dns_clock.advance(2)
    dns_server.set_records("pre.test", "A", ["192.0.2.61"], ttl=100)
    for _ in range(20):
        assert await dns.resolve("pre.test", "A") == ["192.0.2.60"]  # answered from cache at once
    await dns.wait_background()
    assert dns_server.query_count("pre.test", "A") == 2
    assert dns.get_stats()["prefetches"] == 1
    dns_clock.advance(50)  # the prefetched answer runs from the refresh time
    assert await dns.resolve("pre.test", "A") == ["192.0.2.61"]
    assert dns_server.query_count("pre.test", "A") == 2


async def test_prefetch_can_be_disabled(make_dns, dns_server, dns_clock):
    dns_server.set_records("nopre.test", "A", ["192.0.2.62"], ttl=100)
    dns = make_dns(prefetch=False)
    await dns.resolve("nopre.test", "A")
    dns_clock.advance(95)
    await dns.resolve("nopre.test", "A")
    await dns.wait_background()
    assert dns_server.query_count("nopre.test", "A") == 1


async def test_thousand_concurrent_resolves_make_one_query(make_dns, dns_server):
    dns_server.set_records("herd.test", "A", ["192.0.2.70"])
    dns_server.set_records("herd.test", "AAAA", ["2001:db8::70"])
    dns_server.delay(0.05, "herd.test")  # keep the first query in flight while the rest arrive
    # One send only (no retransmission), so a busy machine cannot turn a slow answer into a resend.
    dns = make_dns(timeout_seconds=10.0, attempts=1)
    results = await asyncio.gather(*[dns.resolve("HERD.test.") for _ in range(1000)])
    assert all(r == ["192.0.2.70", "2001:db8::70"] for r in results)
    assert dns_server.query_count("herd.test", "A") == 1
    assert dns_server.query_count("herd.test", "AAAA") == 1
    assert dns.get_stats()["coalesced"] == 999


async def test_coalesced_failure_reaches_every_caller(make_dns, dns_server):
    dns_server.servfail("herdfail.test")
    dns = make_dns()
    results = await asyncio.gather(*[dns.resolve("herdfail.test", "A") for _ in range(100)],
                                   return_exceptions=True)
    assert all(isinstance(r, DNSError) and r.reason == "SERVFAIL" for r in results)
    assert dns_server.query_count("herdfail.test", "A") == 1


async def test_cname_chain_in_one_answer_uses_shortest_ttl(make_dns, dns_server):
    dns_server.set_records("target.test", "A", ["192.0.2.80"], ttl=300)
    dns_server.add_cname("mid.test", "target.test", ttl=45)
    dns_server.add_cname("alias.test", "mid.test", ttl=200)
    dns = make_dns()
    assert await dns.resolve("alias.test", "A") == ["192.0.2.80"]
    assert ttl_left(dns, "alias.test") == pytest.approx(45)
    assert dns_server.query_count("alias.test", "A") == 1
    assert dns_server.query_count("target.test", "A") == 0


async def test_cname_left_open_is_followed(make_dns, dns_server):
    dns_server.set_records("far.test", "A", ["192.0.2.81"], ttl=300)
    dns_server.add_cname("open.test", "far.test", ttl=25, chase=False)
    dns = make_dns()
    assert await dns.resolve("open.test", "A") == ["192.0.2.81"]
    assert dns_server.query_count("far.test", "A") == 1
    assert ttl_left(dns, "open.test") == pytest.approx(25)


async def test_cname_loop_is_an_error_not_a_hang(make_dns, dns_server):
    dns_server.add_cname("loop1.test", "loop2.test", chase=False)
    dns_server.add_cname("loop2.test", "loop1.test", chase=False)
    dns = make_dns()
    with pytest.raises(DNSError, match="CNAME"):
        await dns.resolve("loop1.test", "A")


async def test_truncated_answer_retried_over_tcp(make_dns, dns_server):
    dns_server.set_records("mid.test", "A", [f"192.0.2.{i}" for i in range(1, 41)])
    dns_server.set_records("big.test", "A", [f"192.0.2.{i}" for i in range(1, 91)])
    dns_server.truncate("tc.test")
    dns_server.set_records("tc.test", "A", ["192.0.2.90"])
    dns = make_dns()
    assert await dns.resolve("tc.test", "A") == ["192.0.2.90"]
    assert len(await dns.resolve("mid.test", "A")) == 40  # 656 bytes: fits EDNS's 1,232, no TCP
    assert dns.get_stats()["tcp_fallbacks"] == 1
    assert len(await dns.resolve("big.test", "A")) == 90  # over 1,232 bytes: TC, then TCP
    assert dns.get_stats()["tcp_fallbacks"] == 2


async def test_idna_name_resolves_as_punycode(make_dns, dns_server):
    dns_server.set_records("xn--bcher-kva.test", "A", ["192.0.2.100"])
    dns = make_dns()
    assert await dns.resolve("Bücher.TEST.", "A") == ["192.0.2.100"]
    assert await dns.resolve("xn--bcher-kva.test", "A") == ["192.0.2.100"]
    assert dns_server.query_count("xn--bcher-kva.test", "A") == 1


async def test_bad_names_raise_before_any_query(make_dns, dns_server):
    dns = make_dns()
    for bad in ["", ".", "a..b", "x" * 64 + ".test", ("a" * 60 + ".") * 5, "sp ace.test", "semi;colon"]:
        with pytest.raises(ValueError):
            await dns.resolve(bad)
    with pytest.raises(ValueError):
        await dns.resolve("example.test", rdtype="MX")
    assert dns_server.total_queries == 0


async def test_ip_literals_answer_without_a_query(make_dns, dns_server):
    dns = make_dns()
    assert await dns.resolve("192.0.2.7") == ["192.0.2.7"]
    assert await dns.resolve("[2001:db8::7]") == ["2001:db8::7"]
    assert await dns.resolve("192.0.2.7", "AAAA") == []
    assert dns_server.total_queries == 0


async def test_a_answered_aaaa_failed_returns_a_briefly(make_dns, dns_server, dns_clock):
    dns_server.set_records("half.test", "A", ["192.0.2.110"], ttl=300)
    dns = make_dns(min_ttl_seconds=5)
    dns_server.servfail("half.test", "AAAA")
    assert await dns.resolve("half.test") == ["192.0.2.110"]
    entry = dns.cache.get_entry(dns.cache_key("half.test"))
    assert entry.ttl_remaining(dns_clock()) == pytest.approx(5)  # partial: ask again soon
    dns_server.servfail("half.test", "A")
    dns_clock.advance(6)
    with pytest.raises(DNSError):  # nothing cached for A alone
        await dns.resolve("half.test", "A")
    dns_server.heal()
    dns_clock.advance(6)
    assert await dns.resolve("half.test") == ["192.0.2.110"]
    entry = dns.cache.get_entry(dns.cache_key("half.test"))
    assert entry.ttl_remaining(dns_clock()) == pytest.approx(60)  # AAAA NODATA: SOA minimum 60


async def test_negative_answer_without_soa_is_kept_briefly(dns_clock):
    with TrickyNoSOA() as server:
        dns = DNSCache(DNSConfig(min_ttl_seconds=5, negative_ttl_seconds=300),
                       nameservers=[server.address], clock=dns_clock)
        try:
            assert await dns.resolve("nosoa.test", "A") == []
            assert ttl_left(dns, "nosoa.test") == pytest.approx(5)
        finally:
            await dns.aclose()


class TrickyNoSOA(UDPResponder):
    """A UDP responder answering NXDOMAIN with no authority section (no SOA to take a TTL from)."""

    def reply(self, query: bytes) -> list[bytes]:
        # Same id and question, QR|AA|RD, RA|NXDOMAIN, one question, nothing else.
        return [query[:2] + b"\x85\x83\x00\x01" + bytes(6) + query[12:]]


async def test_cancelled_leader_hands_the_lookup_to_a_waiter(make_dns, dns_server):
    dns_server.set_records("handover.test", "A", ["192.0.2.71"])
    dns_server.delay(0.2, "handover.test")
    dns = make_dns(timeout_seconds=2.0)
    leader = asyncio.create_task(dns.resolve("handover.test", "A"))
    for _ in range(2000):  # until the leader's query has reached the server (bounded)
        if dns_server.query_count("handover.test", "A") == 1:
            break
        await asyncio.sleep(0.001)
    assert dns_server.query_count("handover.test", "A") == 1
    waiters = [asyncio.create_task(dns.resolve("handover.test", "A")) for _ in range(5)]
    await asyncio.sleep(0)
    leader.cancel()
    results = await asyncio.gather(*waiters)
    assert all(r == ["192.0.2.71"] for r in results)
    assert leader.cancelled()
    # The leader's query, then one more by the waiter that took over: never one per waiter.
    assert dns_server.query_count("handover.test", "A") == 2


@pytest.mark.parametrize("bad", [["a.example"], {"a": 1}, 123, None])
async def test_a_host_name_that_is_no_str_is_a_value_error(make_dns, dns_server, bad):
    dns = make_dns()
    with pytest.raises(ValueError, match="str"):
        await dns.resolve(bad)
    assert dns_server.query_count("a.example") == 0


class TruncatingNameserver(UDPResponder):
    """Answers every UDP query with TC set, and accepts TCP on the same port but never answers."""

    def __init__(self) -> None:
        super().__init__()
        for _ in range(20):  # the free UDP port may be taken for TCP: move both to another one
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.tcp.bind(self.sock.getsockname())
                break
            except OSError:
                self.tcp.close()
                self.sock.close()
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sock.bind(("127.0.0.1", 0))
                self.sock.settimeout(0.1)
                self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.tcp.listen(8)  # connections complete in the backlog and then hear nothing

    def reply(self, query: bytes) -> list[bytes]:
        # Same id and question; QR|TC|RD, RA, NOERROR, one question, no records.
        return [query[:2] + b"\x83\x80" + query[4:6] + bytes(6) + query[12:]]

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.tcp.close()


async def test_closing_during_a_tcp_fallback_fails_the_caller_instead_of_hanging():
    with TruncatingNameserver() as server:
        dns = DNSCache(DNSConfig(timeout_seconds=5.0), nameservers=[server.address])
        task = asyncio.create_task(dns.resolve("big.test", "A"))
        for _ in range(2000):  # until TCP took over from the truncated UDP answer (bounded)
            if dns.get_stats().get("tcp_fallbacks"):
                break
            await asyncio.sleep(0.001)
        assert dns.get_stats()["tcp_fallbacks"] == 1
        await dns.aclose()
        with pytest.raises(DNSError, match="closed"):
            await asyncio.wait_for(task, 2.0)
