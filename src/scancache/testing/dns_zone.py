"""The records a LoopbackDNSServer answers from, and the answer sections they make, in wire form.

A zone holds records of any type per name (A, AAAA, CNAME and TXT built by hand; MX, SOA, SRV, CAA,
HTTPS, types by number ... from their presentation text through dnspython), names that exist without
records (NODATA),
names forced to NXDOMAIN, and wildcards ("*.bench.test" answers any name under bench.test). For each
(name, type) it builds the answer and authority sections once and keeps them, so answering a query
costs a dict lookup; any change to the records drops what was built.
"""

from __future__ import annotations

import ipaddress
import struct
import threading
from collections.abc import Iterable, Mapping

__all__ = ["DNSZone", "RDTYPES"]

#: Record types this server knows by name (any other by number or "TYPEnnn").
RDTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
           "SRV": 33, "SVCB": 64, "HTTPS": 65, "CAA": 257}
_RR = struct.Struct("!HHIH")
_CNAME, _SOA = 5, 6
_NXDOMAIN = 3

#: (rcode, section counts, answer + authority bytes): what follows the question in a response.
Tail = tuple[int, bytes, bytes]


def wire_name(name: str) -> bytes:
    """Uncompressed, lower-case wire form of a dotted name ("" or "." is the root)."""
    labels = [label for label in name.strip().rstrip(".").lower().encode("idna").split(b".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def record_type(rdtype: str | int) -> int:
    """The numeric type of rdtype ("AAAA", 28 or "TYPE28"); ValueError for an unknown one."""
    if isinstance(rdtype, int):
        return rdtype
    code = RDTYPES.get(rdtype.upper())
    if code is not None:
        return code
    from scancache.dns.rdtypes import canonical_rdtype

    return canonical_rdtype(rdtype)[1]


def _rdata(qtype: int, value: str) -> bytes:
    """The wire form of one record's data: an address, a target name, a TXT string (split into
    255-byte strings), or any other type's presentation text (via dnspython)."""
    if qtype == 1:
        return ipaddress.IPv4Address(value).packed
    if qtype == 28:
        return ipaddress.IPv6Address(value).packed
    if qtype == _CNAME:
        return wire_name(value)
    if qtype == 16:
        data = value.encode()
        return b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                        for i in range(0, max(len(data), 1), 255))
    import dns.name
    import dns.rdata
    import dns.rdataclass

    rdata = dns.rdata.from_text(dns.rdataclass.IN, qtype, value,  # type: ignore[arg-type]  # int works
                                origin=dns.name.root, relativize=False)
    return rdata.to_wire() or b""  # bytes (None only when writing to a file)


class DNSZone:
    """Records by name, editable while queries are answered (thread-safe), with their answers cached.

    records maps names to an address or a list of addresses (IPv4 -> A, IPv6 -> AAAA) with the
    default ttl. Names not known answer NXDOMAIN, known names without the asked type NODATA; both
    carry an SOA whose MINIMUM is soa_minimum.
    """

    def __init__(self, records: Mapping[str, str | Iterable[str]] | None = None, *, ttl: int = 300,
                 soa_minimum: int = 60, soa_ttl: int = 3600) -> None:
        self.default_ttl = ttl
        self.soa_minimum = soa_minimum
        self.soa_ttl = soa_ttl
        self._lock = threading.Lock()
        self._zone: dict[bytes, dict[int, tuple[int, list[bytes]]]] = {}
        self._cnames: dict[bytes, tuple[int, bytes, bool]] = {}
        self._nx: set[bytes] = set()
        self._tails: dict[tuple[bytes, int], Tail] = {}
        for name, values in (records or {}).items():
            for value in [values] if isinstance(values, str) else values:
                self.add(name, "AAAA" if ":" in value else "A", value)

    # ------------------------------------------------------------------ records
    def _changed(self) -> None:
        """Forget every built answer (called with the lock held, after any change)."""
        self._tails.clear()

    def add(self, name: str, rdtype: str | int, value: str, ttl: int | None = None) -> None:
        """Add one record of any type to name (value in presentation form, e.g. "10 mail.example.test."
        for MX); ttl (default: the server's) applies to the set."""
        qtype, key = record_type(rdtype), wire_name(name)
        with self._lock:
            node = self._zone.setdefault(key, {})
            old_ttl, rdatas = node.get(qtype, (self.default_ttl, []))
            node[qtype] = (old_ttl if ttl is None else ttl, [*rdatas, _rdata(qtype, value)])
            self._nx.discard(key)
            self._changed()

    def set_records(self, name: str, rdtype: str | int, values: Iterable[str],
                    ttl: int | None = None) -> None:
        """Replace name's records of rdtype (an empty list leaves the name with NODATA)."""
        qtype, key = record_type(rdtype), wire_name(name)
        with self._lock:
            node = self._zone.setdefault(key, {})
            node[qtype] = (self.default_ttl if ttl is None else ttl, [_rdata(qtype, v) for v in values])
            if not node[qtype][1]:
                del node[qtype]
            self._nx.discard(key)
            self._changed()

    def add_cname(self, name: str, target: str, ttl: int | None = None, *, chase: bool = True) -> None:
        """Make name an alias of target. chase=False answers the CNAME alone (the client follows)."""
        with self._lock:
            key = wire_name(name)
            self._cnames[key] = (self.default_ttl if ttl is None else ttl, wire_name(target), chase)
            self._nx.discard(key)
            self._changed()

    def nodata(self, name: str) -> None:
        """Make name exist with no records: every type answers NOERROR with an empty answer."""
        with self._lock:
            key = wire_name(name)
            self._zone[key] = {}
            self._cnames.pop(key, None)
            self._nx.discard(key)
            self._changed()

    def nxdomain(self, name: str) -> None:
        """Make name not exist (NXDOMAIN), even under a wildcard."""
        with self._lock:
            key = wire_name(name)
            self._zone.pop(key, None)
            self._cnames.pop(key, None)
            self._nx.add(key)
            self._changed()

    def set_soa(self, *, minimum: int | None = None, ttl: int | None = None) -> None:
        """Set the SOA MINIMUM field and the SOA record's TTL used in negative answers."""
        with self._lock:
            if minimum is not None:
                self.soa_minimum = minimum
            if ttl is not None:
                self.soa_ttl = ttl
            self._changed()

    # ------------------------------------------------------------------ answers
    def _lookup(self, qname: bytes, qtype: int) -> Tail:
        """The answer for qname (wire form, lower case) when it is not cached under its own name."""
        match = self._find(qname)
        tail = self._tails.get((match, qtype)) if match is not None else None
        return tail if tail is not None else self._build_tail(qname, qtype)

    def _find(self, name: bytes) -> bytes | None:
        """The zone key that answers name: itself, or the closest wildcard; None if it is absent."""
        if name in self._zone or name in self._cnames:
            return name
        if name in self._nx:
            return None
        rest = name
        while rest[0]:
            rest = rest[rest[0] + 1:]
            wildcard = b"\x01*" + rest
            if wildcard in self._zone or wildcard in self._cnames:
                return wildcard
        return None

    def _build_tail(self, qname: bytes, qtype: int) -> Tail:
        """(rcode, section counts, answer+authority bytes) for qname; cached per matched key."""
        with self._lock:
            match = self._find(qname)
            cache_key = (qname if match is None or not match.startswith(b"\x01*") else match, qtype)
            parts: list[bytes] = []
            current, key, rcode, stopped = qname, match, 0, False
            for _ in range(16):  # CNAME chain, bounded against loops
                if key is None or qtype == _CNAME or key not in self._cnames:
                    break
                ttl, target, chase = self._cnames[key]
                parts.append(self._rr(current, qname, _CNAME, ttl, target))
                current, key = target, self._find(target)
                if not chase:
                    stopped = True  # the client has to ask for the target itself
                    break
            if not stopped:
                if key is None:
                    rcode = _NXDOMAIN
                elif qtype == _CNAME and key in self._cnames:
                    ttl, target, _ = self._cnames[key]
                    parts.append(self._rr(current, qname, _CNAME, ttl, target))
                else:
                    ttl, rdatas = self._zone.get(key, {}).get(qtype, (0, []))
                    parts.extend(self._rr(current, qname, qtype, ttl, rdata) for rdata in rdatas)
            authority = []
            if not parts or rcode == _NXDOMAIN:
                authority.append(self._soa(qname))
            tail = (rcode, struct.pack("!HHHH", 1, len(parts), len(authority), 0),
                    b"".join(parts + authority))
            self._tails[cache_key] = tail
            return tail

    @staticmethod
    def _rr(owner: bytes, qname: bytes, rrtype: int, ttl: int, rdata: bytes) -> bytes:
        """One resource record in wire form, its owner compressed when it is the question name."""
        # The question name sits at offset 12 of every response: point to it (valid for any name
        # a wildcard matched), other owners are written out uncompressed.
        head = b"\xc0\x0c" if owner == qname else owner
        return head + _RR.pack(rrtype, 1, ttl, len(rdata)) + rdata

    def _soa(self, qname: bytes) -> bytes:
        """The SOA record of qname's apex, for the authority section of a negative answer."""
        apex = self._apex(qname)
        rdata = (b"\x02ns" + apex + b"\x0ahostmaster" + apex
                 + struct.pack("!IIIII", 1, 3600, 600, 86400, self.soa_minimum))
        return apex + _RR.pack(_SOA, 1, self.soa_ttl, len(rdata)) + rdata

    @staticmethod
    def _apex(qname: bytes) -> bytes:
        """The last label of qname, standing in for the zone apex."""
        pos, last = 0, 0
        while qname[pos]:
            last = pos
            pos += qname[pos] + 1
        return qname[last:]
