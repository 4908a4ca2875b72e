"""DNS messages by hand: build a query, parse the answer into addresses, TTL, CNAME end and SOA minimum.

Hand parsing keeps a cold lookup cheap: an A/AAAA answer whose owner is a pointer to the question
(the common case) costs a few struct reads, with no per-record objects. Only what a resolver needs is
read: the rcode, A/AAAA records at the end of the CNAME chain, the chain's TTLs and, for negative
answers, the SOA in the authority section (RFC 2308).
"""

from __future__ import annotations

import socket
import struct

__all__ = ["Answer", "MalformedMessage", "query_suffix", "EDNS_PAYLOAD", "EDNS_OPT", "parse_answer",
           "A", "AAAA", "CNAME", "SOA", "NOERROR", "SERVFAIL", "NXDOMAIN", "REFUSED", "RCODE_NAMES",
           "RESPONSE_FLAG", "TRUNCATED_FLAG"]

A, CNAME, SOA, AAAA = 1, 5, 6, 28
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
#: Header byte 2 (the flags' high byte): QR, set in every response; TC, the answer was truncated.
RESPONSE_FLAG, TRUNCATED_FLAG = 0x80, 0x02
#: Flags (RD) and counts (one question) after the 2-byte id of every query this client sends.
QUERY_HEADER_TAIL = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
#: The same with one additional record: the EDNS(0) OPT record that follows the question.
EDNS_HEADER_TAIL = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
#: UDP payload size advertised through EDNS(0): the DNS flag day 2020 value, which fits the
#: common path MTU without IP fragmentation (larger answers come back truncated, then over TCP).
EDNS_PAYLOAD = 1232
#: The OPT pseudo-record (RFC 6891): root owner, type 41, CLASS = payload size, no flags or options.
EDNS_OPT = b"\x00" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, 0, 0)
_RR = struct.Struct("!HHIH")
_SOA_TIMES = struct.Struct("!IIIII")
_MAX_CHAIN = 16
_inet_ntoa = socket.inet_ntoa
_inet_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6


class MalformedMessage(ValueError):
    """A response that cannot be parsed (truncated, bad pointers, wrong question)."""


class Answer:
    """One parsed response: rcode, addresses at the end of the CNAME chain, and lifetimes.

    ttl is the smallest TTL along the chain and its addresses (None when there are none);
    cname_target is set when the chain ends at a CNAME with no records for it (ask again);
    negative_ttl is min(SOA TTL, SOA MINIMUM) from the authority section, when present.
    """

    __slots__ = ("addresses", "cname_target", "negative_ttl", "rcode", "ttl")

    def __init__(self, rcode: int, addresses: list[str], ttl: float | None,
                 cname_target: str | None = None, negative_ttl: float | None = None) -> None:
        self.rcode = rcode
        self.addresses = addresses
        self.ttl = ttl
        self.cname_target = cname_target
        self.negative_ttl = negative_ttl

    def __repr__(self) -> str:
        return (f"Answer({RCODE_NAMES.get(self.rcode, self.rcode)}, {self.addresses}, ttl={self.ttl}, "
                f"cname_target={self.cname_target}, negative_ttl={self.negative_ttl})")


def query_suffix(wire_name: bytes, qtype: int, *, edns: bool = True) -> bytes:
    """Everything of a query after its id: header flags and counts, the question, and (edns) the
    OPT record advertising EDNS_PAYLOAD bytes."""
    tail = _QUESTION_TAILS.get(qtype)
    if tail is None:
        tail = struct.pack("!HH", qtype, 1)
    if edns:
        return EDNS_HEADER_TAIL + wire_name + tail + EDNS_OPT
    return QUERY_HEADER_TAIL + wire_name + tail


_QUESTION_TAILS = {qtype: struct.pack("!HH", qtype, 1) for qtype in (A, AAAA)}  # QTYPE, QCLASS IN


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """(lower-case dotted name, offset after it) at pos, following compression pointers."""
    labels = []
    end = -1
    jumps = 0
    while True:
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | data[pos + 1]
            jumps += 1
            if jumps > 64:
                raise MalformedMessage("compression pointer loop")
            continue
        if length > 63:
            raise MalformedMessage("bad label length")
        labels.append(data[pos + 1:pos + 1 + length])
        pos += 1 + length
    return b".".join(labels).decode("latin-1").lower(), end if end >= 0 else pos


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            return pos + 2
        pos += 1 + length


def parse_answer(data: bytes, qname: str, qtype: int, question_end: int) -> Answer:
    """Parse a response whose question (already checked by the caller) ends at question_end.

    Raises MalformedMessage (or IndexError/struct.error, which callers treat the same) when the
    message is cut short or inconsistent.
    """
    rcode = data[3] & 0x0F
    ancount = (data[6] << 8) | data[7]
    nscount = (data[8] << 8) | data[9]
    pos = question_end
    if ancount == 1 and data[pos] == 0xC0 and data[pos + 1] == 12:  # the usual single A record
        rrtype, _, rr_ttl, rdlength = _RR.unpack_from(data, pos + 2)
        if rrtype == qtype == A and rdlength == 4 and pos + 16 <= len(data):
            return Answer(rcode, [_inet_ntoa(data[pos + 12:pos + 16])], rr_ttl)
    addresses: list[str] = []
    ttl: float | None = None
    cnames: dict[str, tuple[str, int]] | None = None
    others: list[tuple[str, str, int]] | None = None  # records owned by names other than qname
    for _ in range(ancount):
        if data[pos] == 0xC0 and data[pos + 1] == 12:  # owner is the question name: no parsing
            owner = None
            pos += 2
        else:
            owner, pos = read_name(data, pos)
            if owner == qname:
                owner = None
        rrtype, _, rr_ttl, rdlength = _RR.unpack_from(data, pos)
        pos += 10
        end = pos + rdlength
        if end > len(data):
            raise MalformedMessage("record data past the end of the message")
        if rrtype == qtype and (rdlength == 4 or rdlength == 16):
            text = _inet_ntoa(data[pos:end]) if rdlength == 4 else _inet_ntop(_AF_INET6, data[pos:end])
            if owner is None:
                addresses.append(text)
                if ttl is None or rr_ttl < ttl:
                    ttl = rr_ttl
            else:
                if others is None:
                    others = []
                others.append((owner, text, rr_ttl))
        elif rrtype == CNAME:
            if cnames is None:
                cnames = {}
            cnames[owner or qname] = (read_name(data, pos)[0], rr_ttl)
        pos = end
    if cnames is None or qname not in cnames:  # a CNAME of some other name does not redirect qname
        negative_ttl = _negative_ttl(data, pos, nscount) if not addresses else None
        return Answer(rcode, addresses, ttl, None, negative_ttl)
    return _follow_chain(data, pos, nscount, rcode, qname, cnames, others or [])


def _follow_chain(data: bytes, pos: int, nscount: int, rcode: int, qname: str,
                  cnames: dict[str, tuple[str, int]], others: list[tuple[str, str, int]]) -> Answer:
    """Walk qname's CNAME chain inside one answer; addresses are those of its last name."""
    current, ttl = qname, None
    for _ in range(_MAX_CHAIN):
        link = cnames.get(current)
        if link is None:
            break
        current, link_ttl = link
        ttl = link_ttl if ttl is None else min(ttl, link_ttl)
    addresses = []
    for owner, text, rr_ttl in others:
        if owner == current:
            addresses.append(text)
            ttl = rr_ttl if ttl is None else min(ttl, rr_ttl)
    if addresses:
        return Answer(rcode, addresses, ttl)
    negative_ttl = _negative_ttl(data, pos, nscount)
    if negative_ttl is not None and ttl is not None:
        negative_ttl = min(negative_ttl, ttl)
    target = current if rcode == NOERROR and negative_ttl is None else None
    return Answer(rcode, [], ttl, target, negative_ttl)


def _negative_ttl(data: bytes, pos: int, nscount: int) -> float | None:
    """min(SOA TTL, SOA MINIMUM) of the first SOA in the authority section (RFC 2308 section 5)."""
    for _ in range(nscount):
        pos = _skip_name(data, pos)
        rrtype, _, rr_ttl, rdlength = _RR.unpack_from(data, pos)
        pos += 10
        if rrtype == SOA:
            times = _skip_name(data, _skip_name(data, pos))  # MNAME, RNAME, then five numbers
            minimum = _SOA_TIMES.unpack_from(data, times)[4]
            return float(min(rr_ttl, minimum))
        pos += rdlength
    return None
