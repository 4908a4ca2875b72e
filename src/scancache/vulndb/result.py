"""VulnResult (the list-like answer to a query) and small helpers shared by the vulndb modules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

__all__ = ["VulnResult", "is_newer"]


class VulnResult(list):
    """The OSV records (dicts) answering one query: a plain list, plus where the answer came from.

    source is "osv", "nvd", "cache" or "mirror"; stale is True when a cached answer past its TTL
    stood in for an API that failed. skipped lists (id, reason) for the advisories that answer the
    question but were malformed (see scancache.vulndb.records) and so are missing from the list:
    when it is not empty, an empty list does NOT mean "not vulnerable" (`complete` is False).
    """

    def __init__(self, records: Iterable[dict[str, Any]] = (), *, source: str = "osv",
                 stale: bool = False, skipped: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(records)
        self.source = source
        self.stale = stale
        self.skipped: list[tuple[str, str]] = list(skipped)

    @property
    def complete(self) -> bool:
        """True when every advisory answering the question is in the list (none was skipped)."""
        return not self.skipped

    @property
    def ids(self) -> list[str]:
        """The records' ids, in order."""
        return [r["id"] for r in self]

    @property
    def active(self) -> list[dict[str, Any]]:
        """The records that are not withdrawn (what a scanner should report)."""
        return [r for r in self if not r.get("withdrawn")]


def _modified(value: Any) -> datetime | str:
    """A comparable form of an OSV `modified` timestamp (RFC 3339); the raw string if unparseable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)


def is_newer(reported: str, cached: str) -> bool:
    """Whether OSV's reported `modified` is later than the cached record's (so refetch it)."""
    if reported == cached:  # the warm case: no timestamp parsing (2 us each, thousands per audit)
        return False
    a, b = _modified(reported), _modified(cached)
    try:
        return a > b  # type: ignore[operator]  # str vs datetime: TypeError below
    except TypeError:
        return reported != cached
