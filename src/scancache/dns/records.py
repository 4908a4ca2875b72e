"""parse_records: any record type's answer as presentation text, with dnspython for the rdata.

The hand parser in wire.py covers A and AAAA (the bulk of every scan); for everything else (MX,
TXT, SOA, SRV, CAA, HTTPS, types by number ...) the sections are walked by hand here and only the
records returned go through dnspython, whose `to_text()` gives the standard presentation form
(unknown types as RFC 3597 `\\# len hex`).
The result is the same Answer the fast path makes: records at the end of the question's CNAME
chain, the chain's shortest TTL, the CNAME target if the chain is left open, and the SOA-based
negative TTL (RFC 2308).
"""

from __future__ import annotations

import struct

from scancache.dns.wire import CNAME, Answer, MalformedMessage, _negative_ttl, _skip_name, read_name

__all__ = ["parse_records"]

_MAX_CHAIN = 16
_RR = struct.Struct("!HHIH")
_COUNTS = struct.Struct("!HHH")


def parse_records(data: bytes, qname: str, qtype: int, question_end: int = 0) -> Answer:
    """Parse a response to (qname, qtype); MalformedMessage if it cannot be read.

    The sections are walked by hand (owners, types, TTLs, the CNAME chain); dnspython parses and
    prints only the rdata of the records returned, which is most of what a full Message costs.
    """
    try:
        return _parse(data, qname, qtype, question_end)
    except (IndexError, struct.error, UnicodeError) as exc:
        raise MalformedMessage(f"unreadable answer: {type(exc).__name__}") from None


def _parse(data: bytes, qname: str, qtype: int, question_end: int) -> Answer:
    rcode = data[3] & 0x0F
    qdcount, ancount, nscount = _COUNTS.unpack_from(data, 4)
    pos = question_end
    if not pos:
        pos = 12
        for _ in range(qdcount):
            pos = _skip_name(data, pos) + 4
    rrsets: dict[tuple[str, int], tuple[int, list[tuple[int, int]]]] = {}
    for _ in range(ancount):
        owner, pos = read_name(data, pos)
        rrtype, _, ttl, rdlength = _RR.unpack_from(data, pos)
        pos += 10
        if pos + rdlength > len(data):
            raise MalformedMessage("record data past the end of the message")
        known = rrsets.get((owner, rrtype))
        if known is None:
            rrsets[(owner, rrtype)] = (ttl, [(pos, rdlength)])
        else:
            known[1].append((pos, rdlength))
            rrsets[(owner, rrtype)] = (min(known[0], ttl), known[1])
        pos += rdlength
    current, ttl_seen = qname, None
    records: list[str] = []
    for _ in range(_MAX_CHAIN):
        found = rrsets.get((current, qtype))
        if found is not None:
            records = [_rdata_text(data, qtype, start, length) for start, length in found[1]]
            ttl_seen = found[0] if ttl_seen is None else min(ttl_seen, found[0])
            break
        alias = rrsets.get((current, CNAME)) if qtype != CNAME else None
        if alias is None:
            break
        ttl_seen = alias[0] if ttl_seen is None else min(ttl_seen, alias[0])
        current = read_name(data, alias[1][0][0])[0]
    if records:
        return Answer(rcode, records, ttl_seen)
    negative_ttl = _negative_ttl(data, pos, nscount)
    if negative_ttl is not None and ttl_seen is not None:
        negative_ttl = min(negative_ttl, ttl_seen)
    target = current if current != qname and rcode == 0 and negative_ttl is None else None
    return Answer(rcode, [], ttl_seen, target, negative_ttl)


def _rdata_text(data: bytes, qtype: int, start: int, length: int) -> str:
    """One record's data in presentation form (dnspython; names absolute, with the final dot)."""
    import dns.exception
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    try:
        rdtype = dns.rdatatype.RdataType.make(qtype)
        return dns.rdata.from_wire(dns.rdataclass.IN, rdtype, data, start, length).to_text()
    except (dns.exception.DNSException, ValueError, IndexError) as exc:
        raise MalformedMessage(f"unreadable {qtype} record: {type(exc).__name__}") from None
