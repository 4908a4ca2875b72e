"""DNSResult: one name's answer as a recon tool reports it (status, records with TTLs, provenance).

`DNSCache.resolve()` returns bare addresses (the seed's promise); `DNSCache.query()` returns a
DNSResult so callers can tell NXDOMAIN from NODATA, see each record's TTL, and know whether the
answer came from the cache and which resolver gave it. `as_dict()` is the JSON line the CLI prints
(field names follow dnsx's: host, type, status, answers, resolver, wildcard, cached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["DNSResult", "Record"]


class Record(NamedTuple):
    """One record: its type name ("A", "MX", "TYPE65"), presentation text and remaining TTL."""

    type: str
    data: str
    ttl: int


@dataclass(slots=True)
class DNSResult:
    """A name's answer: status NOERROR (records may be empty: NODATA) or NXDOMAIN, and records.

    rdtype is what was asked (None: A and AAAA). cached says the answer came from the cache
    (fresh or stale), resolver names the source ("ip:port,...", "system" or "literal"), wildcard
    says whether the answer matches its parent zone's wildcard, None until checked (see
    DNSCache.check_wildcard).
    """

    name: str
    rdtype: str | None
    status: str
    records: list[Record]
    cached: bool = False
    resolver: str = ""
    wildcard: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def addresses(self) -> list[str]:
        """The A and AAAA records' addresses, in answer order."""
        return [r.data for r in self.records if r.type in ("A", "AAAA")]

    def as_dict(self) -> dict[str, Any]:
        """The dnsx-like JSON object the CLI prints for this result."""
        row: dict[str, Any] = {
            "host": self.name,
            "type": self.rdtype or "A,AAAA",
            "status": self.status,
            "answers": [{"type": r.type, "data": r.data, "ttl": r.ttl} for r in self.records],
        }
        if self.rdtype in (None, "A", "AAAA"):
            row["addresses"] = self.addresses
        row.update(resolver=self.resolver, wildcard=self.wildcard, cached=self.cached)
        row.update(self.extra)
        return row
