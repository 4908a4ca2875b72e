"""Record types by name and number: "MX", "mx", 15, "15" and "TYPE15" all mean MX.

The types recon tools ask for are in a table; other mnemonics come from dnspython (imported only
then), and any type can be asked by number ("TYPE65534"). Names are canonical upper-case
mnemonics, or "TYPEnnn" for a number without one, so each type has exactly one cache key.
"""

from __future__ import annotations

__all__ = ["RDTYPES", "canonical_rdtype", "type_name", "reverse_name"]

#: The record types scancache names without dnspython, by mnemonic.
RDTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
           "SRV": 33, "DS": 43, "DNSKEY": 48, "TLSA": 52, "SVCB": 64, "HTTPS": 65, "CAA": 257}
_NAMES = {code: name for name, code in RDTYPES.items()}


def type_name(code: int) -> str:
    """The canonical name of a type number: its mnemonic when known, else "TYPEnnn"."""
    name = _NAMES.get(code)
    if name is None:
        try:
            import dns.rdatatype

            name = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(code))
        except Exception:  # out of range or unknown to dnspython
            name = f"TYPE{code}"
    return name


def canonical_rdtype(rdtype: str | int) -> tuple[str, int]:
    """(canonical name, number) of rdtype; ValueError for anything that names no record type.

    Meta types that are no records (ANY, AXFR, IXFR, OPT) are refused: a cache of them would lie.
    """
    if isinstance(rdtype, bool) or not isinstance(rdtype, (str, int)):
        raise ValueError(f"rdtype must be a str or int, got {rdtype!r}")
    if isinstance(rdtype, str):
        text = rdtype.strip().upper()
        code = RDTYPES.get(text)
        if code is not None:
            return text, code
        if text.startswith("TYPE") and text[4:].isdigit():
            rdtype = int(text[4:])
        elif text.isdigit():
            rdtype = int(text)
        else:
            try:
                import dns.rdatatype

                rdtype = int(dns.rdatatype.from_text(text))
            except Exception:
                raise ValueError(f"unknown record type {rdtype!r}") from None
    if not 0 < rdtype < 65536:
        raise ValueError(f"record type number out of range: {rdtype}")
    if rdtype in (41, 251, 252, 253, 254, 255):  # OPT, IXFR, AXFR, MAILB, MAILA, ANY
        raise ValueError(f"record type {type_name(rdtype)} is a query meta type, not a record type")
    return type_name(rdtype), rdtype


def reverse_name(address: str) -> str:
    """The PTR name of an IPv4/IPv6 address ("192.0.2.1" -> "1.2.0.192.in-addr.arpa")."""
    import ipaddress

    return ipaddress.ip_address(address.strip().strip("[]")).reverse_pointer
