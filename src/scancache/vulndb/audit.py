"""Audit a pinned requirements file: one batched OSV lookup, then a report of vulnerable packages.

Parsing: `name==version` lines (extras and environment markers tolerated, `--hash` options and
comments stripped, backslash continuations joined). `-r`, `-c`, `-e` and other option lines are
skipped with a note (nothing is followed or installed); lines without an exact `==` pin are reported
as skipped. Findings: withdrawn advisories are dropped, and advisories that alias each other
(PYSEC-, GHSA-, CVE-) are merged so each flaw is reported once per package.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Requirement", "Finding", "AuditReport", "parse_requirements", "audit_requirements"]

# name[extras]==version [; marker]: the lines a lock file is made of (markers tolerated, not evaluated).
_SIMPLE_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*==\s*"
                         r"([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*(?:;.*)?$")
_NAME_SEPARATORS = re.compile(r"[-_.]+")
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")  # release segments only: orders as int tuples
# Which id names a merged finding: the PyPA advisory first (what pip-audit shows), then GHSA, CVE.
_ID_PREFERENCE = ("PYSEC-", "GHSA-", "CVE-")


@dataclass(frozen=True)
class Requirement:
    """One pinned dependency: name as written, PEP 503 name, version, and its line number."""

    name: str
    normalized_name: str
    version: str
    line: int


@dataclass(frozen=True)
class Finding:
    """One vulnerability of one pinned package: its id, the other ids for it, and fixed versions."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed_versions: tuple[str, ...]
    summary: str = ""


@dataclass
class AuditReport:
    """What an audit found. `vulnerable` lists findings; `to_json()` is what a CLI prints."""

    dependencies: list[Requirement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)
    withdrawn_ignored: int = 0
    #: (id, reason) per malformed advisory that matched a pin and was skipped (the reason names the
    #: pin): that package's status is unknown, so the audit is not clean (the CLI exits 2).
    skipped_advisories: list[tuple[str, str]] = field(default_factory=list)

    @property
    def vulnerable(self) -> list[Finding]:
        """Every finding (one per flaw per package); empty when nothing is vulnerable."""
        return self.findings

    @property
    def vulnerable_packages(self) -> dict[str, list[Finding]]:
        """{package name: its findings} for the packages with at least one."""
        out: dict[str, list[Finding]] = {}
        for finding in self.findings:
            out.setdefault(finding.package, []).append(finding)
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: dependencies, vulnerabilities, skipped lines and counts."""
        return {
            "dependencies": [{"name": d.name, "version": d.version} for d in self.dependencies],
            "vulnerabilities": [{**asdict(f), "aliases": list(f.aliases),
                                 "fixed_versions": list(f.fixed_versions)} for f in self.findings],
            "skipped": [{"line": n, "text": t, "reason": r} for n, t, r in self.skipped],
            "vulnerable_packages": len(self.vulnerable_packages),
            "withdrawn_ignored": self.withdrawn_ignored,
            "skipped_advisories": [{"id": i, "reason": r} for i, r in self.skipped_advisories],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """as_dict() as JSON text."""
        return json.dumps(self.as_dict(), indent=indent, sort_keys=False)


# pip's rule: a comment starts at a "#" at the start of a line or after white space.
_COMMENT = re.compile(r"(^|\s+)#.*$")


def _logical_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(first line number, text) with comments removed and backslash continuations joined, as pip
    reads a requirements file: a comment line never continues onto the next one."""
    pending, start = "", 0
    for number, raw in enumerate(lines, 1):
        line = _COMMENT.sub("", raw.rstrip("\r\n"))
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


# (name, PEP 503 name, version) per "name==version" text: a lock file audited again (or shared by many
# projects) is matched and normalised once. Bounded; cleared when full.
_PIN_MEMO: dict[str, tuple[str, str, str] | None] = {}
_PIN_MEMO_MAX = 65536


def _simple_pin(spec_text: str) -> tuple[str, str, str] | None:
    """(name, normalised name, version) when spec_text is a plain `name==version` pin, else None."""
    try:
        return _PIN_MEMO[spec_text]
    except KeyError:
        pass
    match = _SIMPLE_PIN.match(spec_text)
    pin = None
    if match is not None:
        name = match.group(1)
        pin = (name, _NAME_SEPARATORS.sub("-", name).lower(), match.group(2))
    if len(_PIN_MEMO) >= _PIN_MEMO_MAX:
        _PIN_MEMO.clear()
    _PIN_MEMO[spec_text] = pin
    return pin


def parse_requirements(lines: Iterable[str]) -> tuple[list[Requirement], list[tuple[int, str, str]]]:
    """(pinned requirements, skipped (line number, text, reason)) from requirements-file lines."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as PackagingRequirement
    from packaging.utils import canonicalize_name

    pinned: list[Requirement] = []
    skipped: list[tuple[int, str, str]] = []
    for number, line in _logical_lines(lines):
        text = line.strip()
        if not text:
            continue
        if text.startswith("-"):
            option = text.split()[0]
            skipped.append((number, text, f"option line ({option}) not followed"))
            continue
        spec_text = text.split(" --", 1)[0].strip()  # per-requirement options such as --hash
        simple = _simple_pin(spec_text)
        if simple is not None:  # the common "name==version" line, without packaging's full parser
            pinned.append(Requirement(simple[0], simple[1], simple[2], number))
            continue
        try:
            req = PackagingRequirement(spec_text)
        except InvalidRequirement as exc:
            skipped.append((number, text, f"not a requirement: {exc}"))
            continue
        specs = list(req.specifier)
        if req.url or len(specs) != 1 or specs[0].operator not in ("==", "===") \
                or "*" in specs[0].version:
            skipped.append((number, text, "not pinned to one version (name==version)"))
            continue
        pinned.append(Requirement(req.name, canonicalize_name(req.name), specs[0].version, number))
    return pinned, skipped


def _read(requirements: Any) -> list[str]:
    if isinstance(requirements, Path | os.PathLike):
        return Path(requirements).read_text(encoding="utf-8").splitlines()
    if isinstance(requirements, str):
        if "\n" in requirements or "==" in requirements:
            return requirements.splitlines()
        return Path(requirements).read_text(encoding="utf-8").splitlines()
    return [str(line) for line in requirements]


def _fixed_versions(record: dict[str, Any], name: str) -> tuple[str, ...]:
    from scancache.vulndb.ranges import normalize_name

    fixed = []
    for entry in record.get("affected") or ():
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI":
            continue
        listed = str(package.get("name", ""))
        if listed == name or normalize_name("PyPI", listed) == name:  # most are listed normalised
            for rng in entry.get("ranges") or ():
                if rng.get("type") == "GIT":  # a commit hash is no version a user can pin
                    continue
                fixed += [str(e["fixed"]) for e in rng.get("events") or () if "fixed" in e]
    return _sort_versions(fixed)


def _version_order(version: str) -> tuple[int, Any, str]:
    from scancache.vulndb.ranges import pep440

    parsed = pep440(version)
    return (0, parsed, "") if parsed is not None else (1, None, version)


def _plain_release_order(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 1.0 == 1.0.0 in PEP 440: equal keys, stable order
        parts.pop()
    return tuple(parts)


def _sort_versions(versions: Iterable[str]) -> tuple[str, ...]:
    unique = set(versions)
    if len(unique) < 2:
        return tuple(unique)
    if all(_PLAIN_RELEASE.match(v) for v in unique):  # the usual "1.2.3": no Version objects needed
        return tuple(sorted(unique, key=_plain_release_order))
    return tuple(sorted(unique, key=_version_order))


def _id_rank(vuln_id: str) -> tuple[int, str]:
    for rank, prefix in enumerate(_ID_PREFERENCE):
        if vuln_id.startswith(prefix):
            return rank, vuln_id
    return len(_ID_PREFERENCE), vuln_id


# Findings per (requirement, the records' (id, modified)): OSV changes `modified` whenever a record
# changes (the cache refetches on that same rule), so equal keys mean equal findings, and a repeated
# audit in one process derives nothing again. Findings are immutable; bounded, cleared when full.
_FINDINGS_MEMO: dict[tuple[Any, ...], tuple[Finding, ...]] = {}
_FINDINGS_MEMO_MAX = 16384


def merge_findings(req: Requirement, records: list[dict[str, Any]]) -> list[Finding]:
    """One Finding per flaw: records that name each other (one's id among the other's aliases) or
    share a CVE id are merged. A shared GHSA alone does not merge: one GHSA may cover several CVEs
    that PyPA reports separately (pip-audit reports those separately too).

    Cost: O(ids) with a union-find over record indexes (a package may have hundreds of records);
    no records or one record skip the union-find, and a repeat of the same requirement and record
    versions is a dict lookup.
    """
    if not records:
        return []
    try:
        versions = tuple([(r["id"], r["modified"]) for r in records])
        memo_key = (req.name, req.version, req.normalized_name, versions)
        found = _FINDINGS_MEMO.get(memo_key)
    except (KeyError, TypeError):  # no modified stamp (or an unhashable one): nothing to key on
        return _merge(req, records)
    if found is None:
        found = tuple(_merge(req, records))
        if len(_FINDINGS_MEMO) >= _FINDINGS_MEMO_MAX:
            _FINDINGS_MEMO.clear()
        _FINDINGS_MEMO[memo_key] = found
    return list(found)


def _merge(req: Requirement, records: list[dict[str, Any]]) -> list[Finding]:
    if len(records) < 2:
        return [_finding(req, records)] if records else []
    parent = list(range(len(records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    own = {record["id"]: index for index, record in enumerate(records)}
    cve_owner: dict[str, int] = {}
    for index, record in enumerate(records):
        for alias in (record["id"], *(record.get("aliases") or ())):
            if alias in own and own[alias] != index:
                union(index, own[alias])
            if alias.startswith("CVE-"):
                union(index, cve_owner.setdefault(alias, index))
    groups: dict[int, list[dict[str, Any]]] = {}
    for index, record in enumerate(records):
        groups.setdefault(root(index), []).append(record)
    findings = [_finding(req, group) for group in groups.values()]
    findings.sort(key=_finding_id)
    return findings


def _finding_id(finding: Finding) -> str:
    return finding.id


def _finding(req: Requirement, group: list[dict[str, Any]]) -> Finding:
    """The Finding for records that describe one flaw (named after the preferred id)."""
    if len(group) == 1:
        main = group[0]
        primary = main["id"]
        aliases = main.get("aliases")
        ids = set(aliases) if aliases else set()
        fixed = _fixed_versions(main, req.normalized_name)
    else:
        main = min(group, key=lambda r: _id_rank(r["id"]))
        primary = main["id"]
        ids = {i for r in group for i in (r["id"], *(r.get("aliases") or ()))}
        fixed = _sort_versions(v for r in group for v in _fixed_versions(r, req.normalized_name))
    ids.discard(primary)
    text = str(main.get("summary") or main.get("details") or "").strip()
    return Finding(req.name, req.version, primary, tuple(sorted(ids)), fixed, text.split("\n", 1)[0][:200])


async def audit_requirements(cache: Any, requirements: Any, *, progress: Any = None) -> AuditReport:
    """Audit requirements (a path, the file's text, or its lines) with one cache.query_many call.

    Raises OSError for an unreadable file, VulnDBError when OSV fails and nothing cached stands in.
    """
    pinned, skipped = parse_requirements(_read(requirements))
    report = AuditReport(dependencies=pinned, skipped=skipped)
    from scancache.vulndb.query import pypi_query

    queries = [pypi_query(r.normalized_name, r.version) for r in pinned]
    results = await cache.query_many(queries, progress=progress) if queries else []
    for req, records in zip(pinned, results, strict=True):
        active = [r for r in records if not r.get("withdrawn")]
        report.withdrawn_ignored += len(records) - len(active)
        report.findings += merge_findings(req, active)
        report.skipped_advisories += [(vuln_id, f"{reason} (matched {req.name}=={req.version})")
                                      for vuln_id, reason in getattr(records, "skipped", ())]
    return report
