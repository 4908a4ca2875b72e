"""LoopbackDNSServer itself: answers, wildcards, failure modes, counters, TCP, clean stop."""

from __future__ import annotations

import socket
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from scancache.testing.dns_server import LoopbackDNSServer


def ask(server: LoopbackDNSServer, name: str, rdtype: str = "A", *, tcp: bool = False,
        timeout: float = 2.0) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, server.host, port=server.port, timeout=timeout)


def rrs(message: dns.message.Message) -> list[str]:
    return sorted(rd.to_text() for rrset in message.answer for rd in rrset)


def test_answers_records_with_their_ttl(dns_server):
    dns_server.set_records("ttl.test", "A", ["192.0.2.1", "192.0.2.2"], ttl=42)
    response = ask(dns_server, "TTL.test")
    assert rrs(response) == ["192.0.2.1", "192.0.2.2"]
    assert response.answer[0].ttl == 42
    assert rrs(ask(dns_server, "example.test", "AAAA")) == ["2001:db8::1"]


def test_negative_answers_carry_soa_minimum(dns_server):
    dns_server.set_soa(minimum=17, ttl=99)
    nx = ask(dns_server, "missing.test")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    soa = nx.authority[0]
    assert soa.ttl == 99 and soa[0].minimum == 17
    nodata = ask(dns_server, "example.test", "TXT")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority


def test_wildcard_answers_any_fresh_name_but_not_nxdomain_overrides(dns_server):
    dns_server.add("*.bulk.test", "A", "198.51.100.1")
    assert rrs(ask(dns_server, "n12345.bulk.test")) == ["198.51.100.1"]
    assert rrs(ask(dns_server, "a.b.bulk.test")) == ["198.51.100.1"]
    dns_server.nxdomain("hole.bulk.test")
    assert ask(dns_server, "hole.bulk.test").rcode() == dns.rcode.NXDOMAIN


def test_cname_chased_or_left_open(dns_server):
    dns_server.add_cname("alias.test", "example.test", ttl=30)
    assert rrs(ask(dns_server, "alias.test")) == ["192.0.2.1", "example.test."]
    dns_server.add_cname("open.test", "example.test", chase=False)
    assert rrs(ask(dns_server, "open.test")) == ["example.test."]


@pytest.mark.parametrize(("mode", "rcode"), [("servfail", dns.rcode.SERVFAIL),
                                             ("refuse", dns.rcode.REFUSED)])
def test_error_modes_per_name_and_heal(dns_server, mode, rcode):
    getattr(dns_server, mode)("example.test")
    assert ask(dns_server, "example.test").rcode() == rcode
    assert ask(dns_server, "other.test").rcode() == dns.rcode.NXDOMAIN  # others unaffected
    dns_server.heal("example.test")
    assert ask(dns_server, "example.test").rcode() == dns.rcode.NOERROR


def test_mode_per_record_type(dns_server):
    dns_server.servfail("example.test", "AAAA")
    assert ask(dns_server, "example.test", "AAAA").rcode() == dns.rcode.SERVFAIL
    assert ask(dns_server, "example.test", "A").rcode() == dns.rcode.NOERROR


def test_drop_gives_no_answer(dns_server):
    dns_server.drop()
    with pytest.raises(dns.exception.Timeout):
        ask(dns_server, "example.test", timeout=0.2)
    assert dns_server.query_count("example.test", "A") == 1


def test_truncate_sets_tc_and_tcp_has_the_answer(dns_server):
    dns_server.truncate("example.test")
    udp = ask(dns_server, "example.test")
    assert udp.flags & dns.flags.TC and not udp.answer
    assert rrs(ask(dns_server, "example.test", tcp=True)) == ["192.0.2.1"]


def test_large_answers_truncate_over_udp(dns_server):
    dns_server.set_records("big.test", "A", [f"192.0.2.{i}" for i in range(1, 60)])
    assert ask(dns_server, "big.test").flags & dns.flags.TC
    assert len(rrs(ask(dns_server, "big.test", tcp=True))) == 59


def test_delay_holds_answers_without_blocking_others(dns_server):
    dns_server.delay(0.6, "slow.test")
    start = time.monotonic()
    results = {}

    def slow() -> None:
        results["slow"] = ask(dns_server, "slow.test").rcode()

    thread = threading.Thread(target=slow)
    thread.start()
    assert ask(dns_server, "example.test").rcode() == dns.rcode.NOERROR
    assert time.monotonic() - start < 0.5  # the fast name was not held behind the slow one
    thread.join(5)
    assert time.monotonic() - start >= 0.6
    assert results["slow"] == dns.rcode.NXDOMAIN


def test_counters_are_thread_safe(dns_server):
    def worker() -> None:
        for _ in range(100):
            ask(dns_server, "Example.Test.")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dns_server.query_count("example.test", "A") == 400
    assert dns_server.query_count("example.test") == 400
    dns_server.reset_counts()
    assert dns_server.total_queries == 0


def test_stops_and_frees_its_port():
    with LoopbackDNSServer({"x.test": "192.0.2.1"}) as server:
        port = server.port
        assert rrs(ask(server, "x.test")) == ["192.0.2.1"]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", port))  # would fail if the server still held it
    finally:
        probe.close()
    assert server.address == f"127.0.0.1:{port}"


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_malformed_tcp_query_with_a_delay_set_does_not_kill_the_server(dns_server):
    dns_server.delay(0.01)
    dns_server.set_records("after.test", "A", ["192.0.2.9"])
    with socket.create_connection((dns_server.host, dns_server.port), timeout=2) as conn:
        garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fab"  # a label running off the end
        conn.sendall(len(garbage).to_bytes(2, "big") + garbage)
        conn.settimeout(0.5)
        try:
            conn.recv(512)
        except TimeoutError:
            pass  # no answer to garbage is fine; a dead server is not
    assert rrs(ask(dns_server, "after.test", tcp=True)) == ["192.0.2.9"]
