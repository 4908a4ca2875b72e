"""The hand-written DNS parser against messages built by dnslib (compression, chains, SOA), and fuzz."""

from __future__ import annotations

import struct

import pytest
from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, SOA, A, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from scancache.dns.names import to_wire
from scancache.dns.wire import MalformedMessage, parse_answer


def parse(record: DNSRecord, qname: str, qtype: int):
    data = record.pack()
    return parse_answer(data, qname, qtype, 12 + len(to_wire(qname)) + 4)


def reply(qname: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.question(qname, qtype).reply()


def test_addresses_and_min_ttl():
    r = reply("a.example")
    r.add_answer(RR("a.example", QTYPE.A, rdata=A("192.0.2.1"), ttl=300))
    r.add_answer(RR("a.example", QTYPE.A, rdata=A("192.0.2.2"), ttl=100))
    answer = parse(r, "a.example", 1)
    assert answer.rcode == 0 and answer.addresses == ["192.0.2.1", "192.0.2.2"] and answer.ttl == 100


def test_aaaa_and_case_insensitive_owner():
    r = DNSRecord.question("A.Example", "AAAA").reply()
    r.add_answer(RR("a.EXAMPLE", QTYPE.AAAA, rdata=AAAA("2001:db8::1"), ttl=60))
    answer = parse(r, "a.example", 28)
    assert answer.addresses == ["2001:db8::1"] and answer.ttl == 60


def test_cname_chain_with_compressed_names():
    r = reply("www.example")
    r.add_answer(RR("www.example", QTYPE.CNAME, rdata=CNAME("cdn.example"), ttl=50))
    r.add_answer(RR("cdn.example", QTYPE.CNAME, rdata=CNAME("edge.cdn.example"), ttl=500))
    r.add_answer(RR("edge.cdn.example", QTYPE.A, rdata=A("192.0.2.9"), ttl=20))
    r.add_answer(RR("unrelated.example", QTYPE.A, rdata=A("192.0.2.99"), ttl=1))
    answer = parse(r, "www.example", 1)
    assert answer.addresses == ["192.0.2.9"]
    assert answer.ttl == 20
    assert answer.cname_target is None


def test_chain_ending_at_cname_names_the_target():
    r = reply("www.example")
    r.add_answer(RR("www.example", QTYPE.CNAME, rdata=CNAME("elsewhere.test"), ttl=40))
    answer = parse(r, "www.example", 1)
    assert answer.addresses == [] and answer.cname_target == "elsewhere.test" and answer.ttl == 40


@pytest.mark.parametrize(("soa_ttl", "minimum", "expected"), [(3600, 30, 30), (15, 300, 15)])
def test_negative_ttl_from_soa(soa_ttl, minimum, expected):
    r = reply("gone.example")
    r.header.rcode = RCODE.NXDOMAIN
    r.add_auth(RR("example", QTYPE.SOA, ttl=soa_ttl,
                  rdata=SOA("ns.example", "hostmaster.example", (1, 3600, 600, 86400, minimum))))
    answer = parse(r, "gone.example", 1)
    assert answer.rcode == 3 and answer.addresses == [] and answer.negative_ttl == expected


def test_nodata_without_soa_has_no_negative_ttl():
    answer = parse(reply("empty.example"), "empty.example", 1)
    assert answer.rcode == 0 and answer.addresses == [] and answer.negative_ttl is None


def test_truncated_record_data_is_malformed():
    r = reply("a.example")
    r.add_answer(RR("a.example", QTYPE.A, rdata=A("192.0.2.1"), ttl=300))
    data = r.pack()[:-2]
    with pytest.raises((MalformedMessage, IndexError, struct.error)):
        parse_answer(data, "a.example", 1, 12 + len(to_wire("a.example")) + 4)


@given(st.binary(min_size=12, max_size=200))
@settings(max_examples=500, deadline=None)
def test_garbage_raises_only_parse_errors(data):
    try:
        parse_answer(data, "a.example", 1, min(len(data), 12 + 15))
    except (MalformedMessage, IndexError, struct.error):
        pass


def test_a_cname_of_another_name_does_not_redirect_the_question():
    r = reply("www.example")
    r.add_answer(RR("www.example", QTYPE.A, rdata=A("192.0.2.1"), ttl=300))
    r.add_answer(RR("other.example", QTYPE.CNAME, rdata=CNAME("x.example.net"), ttl=300))
    answer = parse(r, "www.example", 1)
    assert answer.addresses == ["192.0.2.1"] and answer.ttl == 300 and answer.cname_target is None
