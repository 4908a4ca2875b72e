"""Audit dependencies: one batched OSV lookup, then a report of vulnerable packages.

Inputs are read by scancache.vulndb.inputs (requirements files here: includes followed, BOM and
CRLF accepted, every line not audited listed as skipped with its reason). Findings: withdrawn
advisories are dropped, and advisories that alias each other (PYSEC-, GHSA-, CVE-) are merged so
each flaw is reported once per package.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ranges, digest and __version__ at module level, not in the functions that use them: `from M import
# x` run per finding cost more than the function's own work (for a module M, each run raises and
# clears an AttributeError looking for M.__path__). Every audit imports ranges (query.py) and digest
# (the cache) anyway.
from scancache import __version__
from scancache.cache.digest import sha256_hex
from scancache.vulndb._stdlib import json_dumps
from scancache.vulndb._values import FACTORY, value_methods
from scancache.vulndb.inputs.base import ParsedInput, Requirement, Skipped
from scancache.vulndb.ranges import normalize_name, pep440, pep440_order

__all__ = ["Requirement", "Skipped", "Finding", "AuditReport", "parse_requirements", "read_requirements",
           "audit_requirements", "audit_input", "audit_input_cached",
           "SCHEMA_VERSION", "dumps_report"]

#: Version of the JSON report's layout (`schema_version`): raised when a key changes meaning or goes.
SCHEMA_VERSION = 1
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")  # release segments only: orders as int tuples
# Which id names a merged finding: the PyPA advisory first (what pip-audit shows), then GHSA, CVE.
_ID_PREFERENCE = ("PYSEC-", "GHSA-", "CVE-")


@value_methods(frozen=True)
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class Finding:
    """One vulnerability of one pinned package: its id, the other ids for it, and fixed versions."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed_versions: tuple[str, ...]
    summary: str = ""
    severity: str = "unknown"  # none/low/medium/high/critical from CVSS, else the GHSA label
    cvss_score: float | None = None
    cvss_vector: str = ""
    location: str = ""  # FILE:LINE of the pin in the input
    ecosystem: str = "PyPI"

    def __init__(self, package: str, version: str, id: str, aliases: tuple[str, ...],
                 fixed_versions: tuple[str, ...], summary: str = "", severity: str = "unknown",
                 cvss_score: float | None = None, cvss_vector: str = "", location: str = "",
                 ecosystem: str = "PyPI") -> None:
        # frozen: what dataclass's object.__setattr__ calls store, in field order, in one call (a
        # warm 300-pin audit rebuilds 512 findings from the cache)
        self.__dict__.update(package=package, version=version, id=id, aliases=aliases,
                             fixed_versions=fixed_versions, summary=summary, severity=severity,
                             cvss_score=cvss_score, cvss_vector=cvss_vector, location=location,
                             ecosystem=ecosystem)

    def as_dict(self) -> dict[str, Any]:
        """The finding as the JSON report's `vulnerabilities` item: every field, in field order,
        tuples as lists. Written out because dataclasses.asdict deep-copies each value and was most
        of a warm audit's JSON output (60 ms of cProfile time for 512 findings)."""
        return {"package": self.package, "version": self.version, "id": self.id,
                "aliases": list(self.aliases), "fixed_versions": list(self.fixed_versions),
                "summary": self.summary, "severity": self.severity, "cvss_score": self.cvss_score,
                "cvss_vector": self.cvss_vector, "location": self.location, "ecosystem": self.ecosystem}


@value_methods
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class AuditReport:
    """What an audit found. `vulnerable` lists findings; `to_json()` is what a CLI prints."""

    dependencies: list[Requirement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # entries not audited, with the reason
    withdrawn_ignored: int = 0
    #: (id, reason) per malformed advisory that matched a pin and was skipped (the reason names the
    #: pin): that package's status is unknown, so the audit is not clean (the CLI exits 2).
    skipped_advisories: list[tuple[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the files read (includes too)
    input_format: str = "requirements"

    def __init__(self, dependencies: list[Requirement] = FACTORY, findings: list[Finding] = FACTORY,
                 skipped: list[Skipped] = FACTORY, withdrawn_ignored: int = 0,
                 skipped_advisories: list[tuple[str, str]] = FACTORY, sources: list[str] = FACTORY,
                 input_format: str = "requirements") -> None:
        self.dependencies = [] if dependencies is FACTORY else dependencies
        self.findings = [] if findings is FACTORY else findings
        self.skipped = [] if skipped is FACTORY else skipped
        self.withdrawn_ignored = withdrawn_ignored
        self.skipped_advisories = [] if skipped_advisories is FACTORY else skipped_advisories
        self.sources = [] if sources is FACTORY else sources
        self.input_format = input_format

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run reprs its finished task (and so this result) while it
        # restores the SIGINT handler on CPython 3.11; a field-by-field repr of 50,000 dependencies
        # cost 0.5-2.8 s there.
        return (f"AuditReport(dependencies={len(self.dependencies)}, findings={len(self.findings)}, "
                f"skipped={len(self.skipped)}, format={self.input_format!r})")

    @property
    def skipped_by_kind(self) -> dict[str, int]:
        """{kind of reason: how many entries} for the skipped entries ("unpinned", "url", ...)."""
        counts: dict[str, int] = {}
        for entry in self.skipped:
            counts[entry.kind] = counts.get(entry.kind, 0) + 1
        return counts

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

    @property
    def fix_versions(self) -> dict[tuple[str, str], str | None]:
        """{(package, version): the smallest version that fixes all of its findings, or None}.

        Per finding, the smallest fixed version above the pinned one (a later branch's fix never
        stands in for this branch's); per package, the highest of those, as pip-audit computes it.
        None ("no fix yet") when some finding has no fixed version above the pin.
        """
        out: dict[tuple[str, str], str | None] = {}
        for finding in self.findings:
            key = (finding.package, finding.version)
            if key in out and out[key] is None:
                continue
            # fixed_versions are sorted, lowest first: the first above the pin is the smallest
            smallest = _first_fixed_above(finding.version, finding.fixed_versions)
            if smallest is None:
                out[key] = None
                continue
            best = out.get(key)
            if best is None or _newer(smallest, best):
                out[key] = smallest
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: dependencies, vulnerabilities, skipped lines and counts."""
        return {
            "schema_version": SCHEMA_VERSION,
            "input_format": self.input_format,
            "dependencies": [{"name": d.name, "version": d.version, "file": d.file, "line": d.line,
                              "ecosystem": d.ecosystem}
                             for d in self.dependencies],
            "vulnerabilities": [f.as_dict() for f in self.findings],
            "skipped": [{"file": e.file, "line": e.line, "text": e.text, "reason": e.reason,
                         "kind": e.kind} for e in self.skipped],
            "skipped_by_kind": self.skipped_by_kind,
            "sources": list(self.sources),
            "fixes": [{"package": p, "version": v, "fix_version": fix}
                      for (p, v), fix in self.fix_versions.items()],
            "vulnerable_packages": len({f.package for f in self.findings}),  # the keys of vulnerable_packages
            "withdrawn_ignored": self.withdrawn_ignored,
            "skipped_advisories": [{"id": i, "reason": r} for i, r in self.skipped_advisories],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """as_dict() as JSON text: with an indent, each top-level key on its own line and each list
        item (a dependency, a finding) on one line of its own. That is still readable and keeps the
        C encoder (json's indent mode is pure Python: 0.9 s for 50,000 dependencies)."""
        data = self.as_dict()
        if indent is None:
            return json_dumps()(data)
        return dumps_report(data, indent)


def dumps_report(data: dict[str, Any], indent: int = 2) -> str:
    """JSON text of a report dict: top-level keys one a line, each list item on one line (each as
    json.dumps writes it)."""
    encode = json_dumps()
    pad = " " * indent
    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            items = f",\n{pad}{pad}".join([encode(item) for item in value])
            parts.append(f"{pad}{encode(key)}: [\n{pad}{pad}{items}\n{pad}]")
        else:
            parts.append(f"{pad}{encode(key)}: {encode(value)}")
    return "{\n" + ",\n".join(parts) + "\n}"


def parse_requirements(lines: Iterable[str]) -> tuple[list[Requirement], list[Skipped]]:
    """(pinned requirements, skipped entries) from requirements-file lines (includes followed
    relative to the current directory): see scancache.vulndb.inputs.requirements."""
    from scancache.vulndb.inputs.requirements import parse_requirements_text

    parsed = parse_requirements_text(lines)
    return parsed.dependencies, parsed.skipped


def read_requirements(requirements: Any) -> ParsedInput:
    """A ParsedInput from a path (str or PathLike), a requirements text, or its lines.

    A str holding a newline or "==" is text; any other str is a path. Includes are followed relative
    to the file (to the current directory for text). InputError when it cannot be read whole.
    """
    from scancache.vulndb.inputs.requirements import parse_requirements_file, parse_requirements_text

    if isinstance(requirements, ParsedInput):
        return requirements
    if isinstance(requirements, Path | os.PathLike):
        return parse_requirements_file(requirements)
    if isinstance(requirements, str):
        if "\n" in requirements or "==" in requirements:
            return parse_requirements_text(requirements)
        return parse_requirements_file(requirements)
    return parse_requirements_text([str(line) for line in requirements])


def _fixed_versions(record: dict[str, Any], name: str, ecosystem: str = "PyPI") -> tuple[str, ...]:
    fixed = []
    for entry in record.get("affected") or ():
        package = entry.get("package") or {}
        if package.get("ecosystem") != ecosystem:
            continue
        listed = str(package.get("name", ""))
        if listed == name or normalize_name(ecosystem, listed) == name:  # most are listed normalised
            for rng in entry.get("ranges") or ():
                if rng.get("type") == "GIT":  # a commit hash is no version a user can pin
                    continue
                fixed += [str(e["fixed"]) for e in rng.get("events") or () if "fixed" in e]
    return _sort_versions(fixed)


def _version_order(version: str) -> tuple[int, Any, str]:
    parsed = pep440(version)
    return (0, parsed, "") if parsed is not None else (1, None, version)


def _fixed_above(version: str, fixed: Iterable[str]) -> list[str]:
    """The versions of fixed (in their order) above version; all of them when version is no PEP 440
    version. Releases ("1.2.3", most of them) and versions in normal form ("2.0rc1") compare by
    ranges.pep440_order, without packaging's parser."""
    return list(_iter_fixed_above(version, fixed))


def _first_fixed_above(version: str, fixed: Iterable[str]) -> str | None:
    """_fixed_above(version, fixed)[0], None when that is empty: the candidates after the first one
    above the pin are not compared (fix_versions needs only that one)."""
    return next(_iter_fixed_above(version, fixed), None)


def _iter_fixed_above(version: str, fixed: Iterable[str]) -> Iterator[str]:
    mine = pep440_order(version)
    if mine is None:
        current = pep440(version)
        yield from (v for v in fixed if current is None or ((p := pep440(v)) is not None and p > current))
        return
    for candidate in fixed:
        order = pep440_order(candidate)
        if order is not None:
            if order > mine:
                yield candidate
        elif (parsed := pep440(candidate)) is not None and parsed > pep440(version):
            yield candidate


def _newer(version: str, than: str) -> bool:
    """version orders after than (PEP 440; a version that is not PEP 440 after every one that is)."""
    mine, theirs = pep440_order(version), pep440_order(than)
    if mine is not None and theirs is not None:  # "1.2.3", "2.0rc1": compared without parsing
        return mine > theirs
    return _version_order(version) > _version_order(than)


def _plain_release_order(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 1.0 == 1.0.0 in PEP 440: equal keys, stable order
        parts.pop()
    return tuple(parts)


def _sort_versions(versions: Iterable[str]) -> tuple[str, ...]:
    unique = set(versions)
    if len(unique) < 2:
        return tuple(unique)
    # in text order first: equal versions ("1.0", "1.0.0") then keep it (the sorts are stable), not
    # the set's, which changes with the string hash seed from one run to the next
    ordered = sorted(unique)
    if all(_PLAIN_RELEASE.match(v) for v in ordered):  # the usual "1.2.3": no Version objects needed
        return tuple(sorted(ordered, key=_plain_release_order))
    return tuple(sorted(ordered, key=_version_order))


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
        memo_key = (req, versions)
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
        fixed = _fixed_versions(main, req.normalized_name, req.ecosystem)
    else:
        main = min(group, key=lambda r: _id_rank(r["id"]))
        primary = main["id"]
        ids = {i for r in group for i in (r["id"], *(r.get("aliases") or ()))}
        fixed = _sort_versions(v for r in group for v in _fixed_versions(r, req.normalized_name,
                                                                              req.ecosystem))
    ids.discard(primary)
    text = str(main.get("summary") or main.get("details") or "").strip()
    from scancache.vulndb.severity import severity_of

    severity = severity_of(group)
    return Finding(req.name, req.version, primary, tuple(sorted(ids)), fixed, text.split("\n", 1)[0][:200],
                   severity.label, severity.score, severity.vector, req.location, req.ecosystem)


async def audit_requirements(cache: Any, requirements: Any, *, progress: Any = None) -> AuditReport:
    """Audit requirements (a path, the file's text, its lines, or a ParsedInput) with one
    cache.query_many call.

    Raises InputError (a ValueError naming file and line) for an input that cannot be read whole,
    VulnDBError when OSV fails and nothing cached stands in.
    """
    return await audit_input(cache, read_requirements(requirements), progress=progress)


async def audit_input(cache: Any, parsed: ParsedInput, *, progress: Any = None) -> AuditReport:
    """Audit the dependencies of an input already read (any format) with one cache.query_many call.

    The findings of each package are also stored as derived from its records (see
    _derivation_key), so the next audit of these pins answers without reading the records."""
    queries = _queries(parsed.dependencies)
    results = await cache.query_many(queries, progress=progress) if queries else []
    report = _report(parsed, results)
    if hasattr(cache, "astore_derived"):
        await cache.astore_derived(_derivations(parsed.dependencies, results))
    return report


def audit_input_cached(cache: Any, parsed: ParsedInput) -> AuditReport | None:
    """audit_input answered by the cache alone (no request, no event loop), or None when the cache
    cannot answer every dependency (then audit_input asks OSV).

    Cost: one get_many for the answers and one for each package's findings derived from exactly
    the records its answer names (by id and modified); only when some are missing (a cache filled
    by another version of scancache), one more for the records, whose findings are then stored.
    A warm CLI audit takes this way and imports neither asyncio nor an HTTP client (issue 14).
    """
    if not hasattr(cache, "cached_answer_ids"):
        return None
    pinned = parsed.dependencies
    queries = _queries(pinned)
    answers = cache.cached_answer_ids(queries) if queries else []
    if answers is None:
        return None
    keys = [_derivation_key(req, pairs) if pairs else None
            for req, pairs in zip(pinned, answers, strict=True)]
    wanted = {k for k in keys if k is not None}
    derived = cache.derived(wanted) if wanted else {}
    report = AuditReport(dependencies=pinned, skipped=parsed.skipped, sources=parsed.files,
                         input_format=parsed.format)
    for req, key in zip(pinned, keys, strict=True):
        if key is None:  # no advisory names this pin
            continue
        stored = _from_derivation(req, derived.get(key))
        if stored is None:  # missing or unreadable: derive every package again from the records
            results = cache.query_many_cached(queries)
            if results is None:
                return None
            cache.store_derived(_derivations(pinned, results))
            return _report(parsed, results)
        report.withdrawn_ignored += stored[0]
        report.findings += stored[1]
    return report


#: Raised when what a finding holds, or how findings are derived from records, changes: findings
#: an older scancache stored are then derived again (the key holds it, with the version).
_DERIVATION = 1


def _derivation_key(req: Requirement, pairs: Iterable[tuple[str, str]]) -> str:
    """The key of req's package's findings derived from the records pairs names ((id, modified)):
    the findings depend on the package (ecosystem and name: which ranges apply) and those records
    only, not on the pinned version or its line, so other pins of the package share them."""
    text = json_dumps(compact=True)([_DERIVATION, __version__, req.ecosystem, req.normalized_name,
                                     sorted({(str(i), str(m)) for i, m in pairs})])
    return "findings:" + sha256_hex(text.encode())[:40]


def _derivations(pinned: list[Requirement], results: list[Any]) -> dict[str, list[Any]]:
    """{derivation key: [withdrawn records, finding rows]} for each package whose answer was whole
    (nothing skipped) and none of whose records is due to be withdrawn later (that depends on the
    clock, not only on the records; one withdrawn already stays withdrawn)."""
    from scancache.vulndb.records import is_withdrawn

    out: dict[str, list[Any]] = {}
    for req, records in zip(pinned, results, strict=True):
        if not records or getattr(records, "skipped", None):
            continue
        active = [r for r in records if "withdrawn" not in r]
        withdrawn = [r for r in records if "withdrawn" in r]
        if not all(is_withdrawn(r) for r in withdrawn):
            continue
        try:
            pairs = [(r["id"], r["modified"]) for r in records]
        except KeyError:
            continue
        out[_derivation_key(req, pairs)] = [len(withdrawn), [
            [f.id, list(f.aliases), list(f.fixed_versions), f.summary, f.severity, f.cvss_score,
             f.cvss_vector] for f in merge_findings(req, active)]]
    return out


def _from_derivation(req: Requirement, value: Any) -> tuple[int, list[Finding]] | None:
    """(withdrawn records, req's Findings) from a stored derivation; None unless it is well formed
    (and names a finding unless some record was withdrawn: a package an answer names has at least
    one, so an empty list alone is no answer)."""
    if not (isinstance(value, list) and len(value) == 2 and type(value[0]) is int and value[0] >= 0
            and isinstance(value[1], list) and (value[1] or value[0] > 0)):
        return None
    out = []
    location = req.location
    for row in value[1]:
        if not (isinstance(row, list) and len(row) == 7 and isinstance(row[0], str) and row[0]
                and isinstance(row[1], list) and all(isinstance(a, str) for a in row[1])
                and isinstance(row[2], list) and all(isinstance(v, str) for v in row[2])
                and isinstance(row[3], str) and isinstance(row[4], str)
                and (row[5] is None or type(row[5]) in (int, float)) and isinstance(row[6], str)):
            return None
        out.append(Finding(req.name, req.version, row[0], tuple(row[1]), tuple(row[2]), row[3], row[4],
                           None if row[5] is None else float(row[5]), row[6], location, req.ecosystem))
    return value[0], out


def _queries(pinned: list[Requirement]) -> list[Any]:
    """One OSV query per dependency (a PyPI pin's is memoised and canonical)."""
    from scancache.vulndb.query import pypi_query

    return [pypi_query(r.normalized_name, r.version) if r.ecosystem == "PyPI"
            else {"package": r.name, "ecosystem": r.ecosystem, "version": r.version} for r in pinned]


def _report(parsed: ParsedInput, results: list[Any]) -> AuditReport:
    """The AuditReport of parsed from the answers (one per dependency, in order): withdrawn records
    left out and counted, aliases merged, malformed advisories listed: what both audits share."""
    from scancache.vulndb.records import is_withdrawn

    pinned = parsed.dependencies
    report = AuditReport(dependencies=pinned, skipped=parsed.skipped, sources=parsed.files,
                         input_format=parsed.format)
    for req, records in zip(pinned, results, strict=True):
        skipped = getattr(records, "skipped", None)
        if skipped:
            report.skipped_advisories += [(vuln_id, f"{reason} (matched {req.name}=={req.version})")
                                          for vuln_id, reason in skipped]
        if not records:  # most pins of a large file: nothing more to do
            continue
        active = [r for r in records if not r.get("withdrawn") or not is_withdrawn(r)]
        report.withdrawn_ignored += len(records) - len(active)
        report.findings += merge_findings(req, active)
    return report
