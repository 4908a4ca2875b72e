"""Every record type recon asks for, as presentation text with TTLs, against two real servers.

The package's loopback server and dnsmasq (a server we did not write) serve A, AAAA, CNAME, NS, MX,
TXT, SOA, SRV, CAA, PTR, HTTPS/SVCB and a type by number; each answer is cached for its own TTL and
negative answers per type. EDNS(0) keeps answers up to 1,232 bytes on UDP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures_dns import UDPResponder
from scancache import DNSCache, DNSConfig, DNSError
from scancache.dns.rdtypes import canonical_rdtype
from scancache.testing.dns_server import LoopbackDNSServer
from scancache.testing.dnsmasq import Dnsmasq, dnsmasq_path

HTTPS_HEX = "000100" "0001" "0003" "026832" "0004" "0004" "c0000201"  # 1 . alpn=h2 ipv4hint=192.0.2.1


@pytest.fixture
def zone() -> Iterator[LoopbackDNSServer]:
    with LoopbackDNSServer({"a.test": ["192.0.2.1", "2001:db8::1"]}, ttl=300, soa_minimum=60) as s:
        s.add("a.test", "MX", "10 mail.a.test.", ttl=120)
        s.add("a.test", "MX", "20 backup.a.test.", ttl=120)
        s.add("a.test", "TXT", "v=spf1 -all", ttl=90)
        s.add("a.test", "NS", "ns1.a.test.")
        s.add("a.test", "SOA", "ns1.a.test. hostmaster.a.test. 7 3600 600 86400 60")
        s.add("a.test", "CAA", '0 issue "letsencrypt.org"')
        s.add("a.test", "HTTPS", '1 . alpn="h2" ipv4hint="192.0.2.1"')
        s.add("_svc.a.test", "SVCB", "1 svc.a.test. port=8443")
        s.add("_sip._tcp.a.test", "SRV", "1 2 5060 sip.a.test.")
        s.add("1.2.0.192.in-addr.arpa", "PTR", "a.test.")
        s.add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "PTR",
              "v6.a.test.")
        s.add("a.test", "TYPE65280", r"\# 3 abcdef")
        s.add_cname("www.a.test", "a.test", ttl=30)
        yield s


@pytest.fixture
async def dns(zone) -> DNSCache:
    resolver = DNSCache(DNSConfig(timeout_seconds=1, attempts=2), nameservers=[zone.address])
    yield resolver
    await resolver.aclose()


@pytest.mark.parametrize("name, rdtype, expected", [
    ("a.test", "A", ["192.0.2.1"]),
    ("a.test", "AAAA", ["2001:db8::1"]),
    ("a.test", "MX", ["10 mail.a.test.", "20 backup.a.test."]),
    ("a.test", "TXT", ['"v=spf1 -all"']),
    ("a.test", "NS", ["ns1.a.test."]),
    ("a.test", "SOA", ["ns1.a.test. hostmaster.a.test. 7 3600 600 86400 60"]),
    ("a.test", "CAA", ['0 issue "letsencrypt.org"']),
    ("a.test", "HTTPS", ['1 . alpn="h2" ipv4hint="192.0.2.1"']),
    ("_svc.a.test", "SVCB", ['1 svc.a.test. port="8443"']),
    ("_sip._tcp.a.test", "srv", ["1 2 5060 sip.a.test."]),
    ("www.a.test", "CNAME", ["a.test."]),
    ("www.a.test", "MX", ["10 mail.a.test.", "20 backup.a.test."]),  # through the CNAME
    ("a.test", 65280, [r"\# 3 abcdef"]),
    ("a.test", "TYPE65280", [r"\# 3 abcdef"]),
])
async def test_each_type_as_presentation_text(dns, name, rdtype, expected):
    result = await dns.query(name, rdtype)
    assert result.status == "NOERROR"
    assert sorted(r.data for r in result.records) == sorted(expected)
    kind = canonical_rdtype(rdtype)[0]
    assert {r.type for r in result.records} == {kind}
    assert all(0 < r.ttl <= 300 for r in result.records)


async def test_each_type_cached_for_its_own_ttl(dns, zone):
    mx = await dns.query("a.test", "MX")
    txt = await dns.query("a.test", "TXT")
    assert {r.ttl for r in mx.records} == {120} and {r.ttl for r in txt.records} == {90}
    again = await dns.query("a.test", "MX")
    assert again.cached and zone.query_count("a.test", "MX") == 1
    assert dns.cache.get_entry(dns.cache_key("a.test", "MX")).ttl_remaining(dns._clock()) <= 120
    assert dns.cache_key("a.test", "mx") == dns.cache_key("A.TEST.", 15) != dns.cache_key("a.test", "A")


async def test_negative_answers_are_cached_per_type(dns, zone):
    assert (await dns.query("a.test", "SRV")).records == []  # NODATA for SRV ...
    assert (await dns.query("a.test", "SRV")).cached
    assert await dns.resolve("a.test", "A") == ["192.0.2.1"]  # ... is no answer for A
    assert zone.query_count("a.test", "SRV") == 1
    gone = await dns.query("gone.a.test", "MX")
    assert gone.status == "NXDOMAIN"
    assert (await dns.query("gone.a.test", "TXT")).status == "NXDOMAIN"
    assert zone.query_count("gone.a.test", "TXT") == 1  # each type asks, and is cached, itself


async def test_reverse_of_ipv4_and_ipv6(dns):
    assert await dns.reverse("192.0.2.1") == ["a.test"]
    assert await dns.reverse("2001:db8::1") == ["v6.a.test"]
    assert await dns.reverse("192.0.2.200") == []
    assert (await dns.query("192.0.2.1", "PTR")).records[0].data == "a.test."
    with pytest.raises(ValueError):
        await dns.reverse("not-an-address")


async def test_resolve_keeps_returning_addresses_only(dns, zone):
    assert sorted(await dns.resolve("a.test")) == ["192.0.2.1", "2001:db8::1"]
    with pytest.raises(ValueError, match="query"):
        await dns.resolve("a.test", "MX")
    with pytest.raises(ValueError):
        await dns.query("a.test", "ANY")  # a meta type: no cacheable record set
    with pytest.raises(ValueError):
        await dns.query("a.test", "NOSUCHTYPE")
    with pytest.raises(ValueError):
        await dns.query("192.0.2.1", "MX")
    assert zone.total_queries == 2


async def test_servfail_for_one_type_is_an_error_for_that_type_only(dns, zone):
    zone.servfail("a.test", "CAA")
    with pytest.raises(DNSError, match="SERVFAIL"):
        await dns.query("a.test", "CAA")
    assert (await dns.query("a.test", "MX")).records


# ------------------------------------------------------------------ EDNS(0)
async def test_edns_keeps_a_large_txt_answer_on_udp(dns, zone):
    zone.add("big.a.test", "TXT", "x" * 1000)  # ~1,050 bytes: over 512, under 1,232
    result = await dns.query("big.a.test", "TXT")
    assert len(result.records[0].data) > 1000
    assert dns.get_stats()["tcp_fallbacks"] == 0
    zone.add("huge.a.test", "TXT", "y" * 1500)  # over 1,232: truncated, then TCP
    assert (await dns.query("huge.a.test", "TXT")).records
    assert dns.get_stats()["tcp_fallbacks"] == 1


class NoEDNS(UDPResponder):
    """A server from before EDNS: FORMERR to any query with an OPT record, else one A record."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[bytes] = []

    def reply(self, query: bytes) -> list[bytes]:
        self.queries.append(query)
        end = 12
        while query[end]:
            end += query[end] + 1
        question = query[12:end + 5]
        if query[10:12] != b"\x00\x00":
            return [query[:2] + b"\x81\x01" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question]
        record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x07"
        return [query[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + question + record]


async def test_a_server_without_edns_is_asked_again_without_it():
    with NoEDNS() as server:
        async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[server.address]) as dns:
            assert await dns.resolve("old.test", "A") == ["192.0.2.7"]
    assert len(server.queries) == 2
    assert server.queries[0][10:12] == b"\x00\x01" and server.queries[1][10:12] == b"\x00\x00"


# ------------------------------------------------------------------ dnsmasq: a server we did not write
needs_dnsmasq = pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed")


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[Dnsmasq]:
    if dnsmasq_path() is None:
        pytest.skip("dnsmasq is not installed")
    options = ["--local-ttl=300", "--host-record=a.test,192.0.2.1,2001:db8::1",
               "--mx-host=a.test,mail.a.test,10", "--txt-record=a.test,v=spf1 -all,second",
               "--srv-host=_sip._tcp.a.test,sip.a.test,5060,1,2", "--cname=www.a.test,a.test",
               "--ptr-record=1.2.0.192.in-addr.arpa,a.test",
               "--caa-record=a.test,0,issue,letsencrypt.org", f"--dns-rr=a.test,65,{HTTPS_HEX}",
               "--txt-record=big.a.test," + "z" * 250 + "," + "z" * 250 + "," + "z" * 250]
    with Dnsmasq(options) as server:
        yield server


@needs_dnsmasq
@pytest.mark.parametrize("name, rdtype, expected", [
    ("a.test", "A", ["192.0.2.1"]),
    ("a.test", "AAAA", ["2001:db8::1"]),
    ("a.test", "MX", ["10 mail.a.test."]),
    ("a.test", "TXT", ['"v=spf1 -all" "second"']),
    ("_sip._tcp.a.test", "SRV", ["1 2 5060 sip.a.test."]),
    ("www.a.test", "CNAME", ["a.test."]),
    ("a.test", "CAA", ['0 issue "letsencrypt.org"']),
    ("a.test", "HTTPS", ['1 . alpn="h2" ipv4hint="192.0.2.1"']),
    ("a.test", 65, ['1 . alpn="h2" ipv4hint="192.0.2.1"']),
    ("192.0.2.1", "PTR", ["a.test."]),
])
async def test_dnsmasq_answers_each_type(dnsmasq, name, rdtype, expected):
    async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[dnsmasq.address]) as dns:
        result = await dns.query(name, rdtype)
        assert result.status == "NOERROR"
        assert [r.data for r in result.records] == expected
        assert all(r.ttl == 300 for r in result.records)


@needs_dnsmasq
async def test_dnsmasq_negative_answers_and_edns(dnsmasq):
    async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[dnsmasq.address]) as dns:
        assert (await dns.query("nothere.test", "A")).status == "NXDOMAIN"
        nodata = await dns.query("a.test", "SRV")
        assert nodata.status == "NOERROR" and nodata.records == []
        big = await dns.query("big.a.test", "TXT")  # ~780 bytes: on UDP thanks to EDNS(0)
        assert len(big.records[0].data) > 750
        assert dns.get_stats()["tcp_fallbacks"] == 0
