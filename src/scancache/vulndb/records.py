"""The shape an OSV record must have before anything uses or stores it, checked in one place.

A record comes from an API answer, a cache written by someone else, or a file in a dump. Code that
reads one (range evaluation, alias merging, fixed versions) trusts its shape, so a record that is
not an OSV record must stop here: `record_problem` says what is wrong with it (None when nothing
is), and callers skip it with one warning naming its id. A skipped record is never cached, and an
audit that it would have concerned reports that package's status as unknown (see audit.py).

What is checked (the OSV schema, https://ossf.github.io/osv-schema/, as far as scancache relies on it):
- `id` and `modified` non-empty strings; `withdrawn`, `summary`, `details` strings when present,
  `withdrawn` an RFC 3339 timestamp (anything else could hide a record: see is_withdrawn);
  `aliases`/`related` lists of strings;
- `affected` present, a list of objects (records converted from NVD, which name no package, are
  exempt: `database_specific.source == "nvd"`; an empty list is valid and affects nothing);
  each entry's `package` an object of strings, `versions` a list of strings, `ranges` a list of
  objects whose `type` is a string and whose `events` are a non-empty list of objects holding
  exactly one of introduced / fixed / last_affected / limit, with a string value;
- in ECOSYSTEM ranges of ecosystems with a known order (PEP 440 for PyPI, semver) and in SEMVER
  ranges, every `introduced` (other than "0") and `last_affected` version must parse: an
  unparseable one would be ignored and could hide an affected range. An unparseable `fixed` can
  only widen a range (report more, never less), so it is kept: real PyPA records carry a few.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from scancache.vulndb.ranges import version_key_for

__all__ = ["record_problem", "record_label", "is_withdrawn", "parse_rfc3339", "EVENT_KINDS"]

EVENT_KINDS = frozenset({"introduced", "fixed", "last_affected", "limit"})
#: Event kinds whose unparseable version could hide an affected range (see the module docstring).
_MUST_PARSE = frozenset({"introduced", "last_affected"})
_MAX_ID = 256
# Compiled on first use (re caches it): a warm audit checks no record.
_RFC3339_PATTERN = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
                    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z")


def parse_rfc3339(text: str) -> _dt.datetime | None:
    """The aware datetime an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, offsets, fractions) names,
    or None for anything else (a date alone, "not-a-date", an impossible month)."""
    if not re.match(_RFC3339_PATTERN, text):
        return None
    try:
        return _dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def is_withdrawn(record: dict[str, Any], now: _dt.datetime | None = None) -> bool:
    """Whether record was withdrawn: its `withdrawn` timestamp parses and is not in the future. A
    future date is not withdrawn yet, and an unparseable one withdraws nothing (record_problem
    refuses such records; one that got past it is reported, never hidden)."""
    value = record.get("withdrawn")
    if not value or not isinstance(value, str):
        return False
    when = parse_rfc3339(value)
    return when is not None and when <= (now or _dt.datetime.now(_dt.UTC))


def record_label(record: Any) -> str:
    """The record's id for messages, or a placeholder when it has none worth printing."""
    if isinstance(record, dict):
        vuln_id = record.get("id")
        if isinstance(vuln_id, str) and vuln_id and len(vuln_id) <= _MAX_ID and vuln_id.isprintable():
            return vuln_id
    return "<record without a valid id>"


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _affected_problem(index: int, entry: Any) -> str | None:
    where = f"affected[{index}]"
    if not isinstance(entry, dict):
        return f"{where} must be an object, got {type(entry).__name__}"
    package = entry.get("package")
    if package is not None and (not isinstance(package, dict)
                                or not all(isinstance(v, str) for v in package.values())):
        return f"{where}.package must be an object of strings"
    if "versions" in entry and not _strings(entry["versions"]):
        return f"{where}.versions must be a list of strings"
    ranges = entry.get("ranges", [])
    if not isinstance(ranges, list):
        return f"{where}.ranges must be a list"
    ecosystem = package.get("ecosystem", "") if package else ""
    for number, rng in enumerate(ranges):
        problem = _range_problem(f"{where}.ranges[{number}]", rng, ecosystem)
        if problem:
            return problem
    return None


def _range_problem(where: str, rng: Any, ecosystem: str) -> str | None:
    if not isinstance(rng, dict):
        return f"{where} must be an object, got {type(rng).__name__}"
    range_type = rng.get("type")
    if not isinstance(range_type, str):
        return f"{where}.type must be a string"
    events = rng.get("events")
    if not isinstance(events, list) or not events:
        return f"{where}.events must be a non-empty list"
    parse = version_key_for(ecosystem, range_type)
    for number, event in enumerate(events):
        if not isinstance(event, dict) or len(event) != 1:
            return (f"{where}.events[{number}] must be an object with one of "
                    f"{', '.join(sorted(EVENT_KINDS))}")
        (kind, value), = event.items()
        if kind not in EVENT_KINDS or not isinstance(value, str) or not value:
            return f"{where}.events[{number}] must be one of {', '.join(sorted(EVENT_KINDS))} " \
                   "with a version string"
        if parse is not None and kind in _MUST_PARSE and value != "0" and parse(value) is None:
            return f"{where}.events[{number}]: unparseable {range_type} version {kind}={value!r}"
    return None


def record_problem(record: Any) -> str | None:
    """What makes record unusable as an OSV record (one sentence), or None when it is usable.

    Cost: one walk over the record (a few microseconds for a typical PyPA advisory; version parses
    are memoised in scancache.vulndb.ranges).
    """
    if not isinstance(record, dict):
        return f"a record must be an object, got {type(record).__name__}"
    vuln_id = record.get("id")
    if not isinstance(vuln_id, str) or not vuln_id or len(vuln_id) > _MAX_ID \
            or not vuln_id.isprintable():
        return "'id' must be a non-empty printable string"
    modified = record.get("modified")
    if not isinstance(modified, str) or not modified:
        return "'modified' must be a non-empty string"
    for name in ("withdrawn", "summary", "details", "published"):
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"'{name}' must be a string"
    if record.get("withdrawn") is not None and parse_rfc3339(record["withdrawn"]) is None:
        return "'withdrawn' must be an RFC 3339 timestamp"
    for name in ("aliases", "related"):
        if record.get(name) is not None and not _strings(record[name]):
            return f"'{name}' must be a list of strings"
    affected = record.get("affected")
    from_nvd = isinstance(record.get("database_specific"), dict) \
        and record["database_specific"].get("source") == "nvd"
    if affected is None and from_nvd:
        return None
    if not isinstance(affected, list):
        return "'affected' must be a list" if "affected" in record else "'affected' is missing"
    for index, entry in enumerate(affected):
        problem = _affected_problem(index, entry)
        if problem:
            return problem
    return None
