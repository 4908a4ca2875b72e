"""parse_records: any record type's answer as presentation text, through dnspython.

The hand parser in wire.py covers A and AAAA (the bulk of every scan); everything else (MX, TXT,
SOA, SRV, CAA, HTTPS, types by number ...) is rare enough to pay for dnspython's full parser, and
its `to_text()` gives the standard presentation form (unknown types as RFC 3597 `\\# len hex`).
The result is the same Answer the fast path makes: records at the end of the question's CNAME
chain, the chain's shortest TTL, the CNAME target if the chain is left open, and the SOA-based
negative TTL (RFC 2308).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scancache.dns.wire import CNAME, SOA, Answer, MalformedMessage

if TYPE_CHECKING:
    from dns.rrset import RRset

__all__ = ["parse_records"]

_MAX_CHAIN = 16


def parse_records(data: bytes, qname: str, qtype: int, question_end: int = 0) -> Answer:
    """Parse a response to (qname, qtype); MalformedMessage if dnspython cannot read it."""
    import dns.exception
    import dns.message

    try:
        message = dns.message.from_wire(data, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, IndexError) as exc:
        raise MalformedMessage(f"unreadable answer: {type(exc).__name__}") from None
    rcode = message.rcode() & 0x0F
    rrsets: dict[tuple[str, int], RRset] = {}
    for rrset in message.answer:
        owner = rrset.name.to_text(omit_final_dot=True).lower()
        rrsets[(owner, rrset.rdtype)] = rrset
    current, ttl = qname, None
    records: list[str] = []
    for _ in range(_MAX_CHAIN):
        found = rrsets.get((current, qtype))
        if found is not None:
            records = [rdata.to_text() for rdata in found]
            ttl = found.ttl if ttl is None else min(ttl, found.ttl)
            break
        alias = rrsets.get((current, CNAME)) if qtype != CNAME else None
        if alias is None:
            break
        ttl = alias.ttl if ttl is None else min(ttl, alias.ttl)
        current = alias[0].target.to_text(omit_final_dot=True).lower()
    if records:
        return Answer(rcode, records, ttl)
    negative_ttl = None
    for rrset in message.authority:
        if rrset.rdtype == SOA and len(rrset):
            negative_ttl = float(min(rrset.ttl, rrset[0].minimum))
            break
    if negative_ttl is not None and ttl is not None:
        negative_ttl = min(negative_ttl, ttl)
    target = current if current != qname and rcode == 0 and negative_ttl is None else None
    return Answer(rcode, [], ttl, target, negative_ttl)
