"""The OSV API (and NVD CVE API) answers over a set of OSV records, without any HTTP.

OSVTestServer (osv_server.py) serves these answers on a loopback port and adds faults and counters;
tests can also call `answer()` directly. POST /v1/query pages every `page_size` records via
next_page_token; POST /v1/querybatch returns ids and modified only, at most 1,000 queries (else 400),
paged per query every `batch_page_size`; GET /v1/vulns/{id} is 404 with OSV's error body when unknown;
GET /rest/json/cves/2.0 (cveId, cpeName, keywordSearch, startIndex, resultsPerPage, capped at
`nvd_page_size`) is built from the records' CVE aliases plus any raw NVD `cve` objects given. Version
matching uses the same range evaluation as the offline mirror (PEP 440 for PyPI, semver where the
ecosystem uses it).

Hostile advisories: `plant(id, body, packages=[...])` serves any body (a malformed record, or bytes
that are not JSON) at GET /v1/vulns/{id} and lists the id for every version of the named packages in
/v1/querybatch (and the body in /v1/query when it is JSON), as a compromised or buggy server would.
Records given to the constructor whose shape cannot be evaluated are indexed as far as they can be
and never crash the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from scancache.vulndb.query import canonical_ecosystem, parse_purl
from scancache.vulndb.ranges import normalize_name, record_affects

if TYPE_CHECKING:
    from email.message import Message

__all__ = ["MAX_BATCH", "NVD_PATH", "OSVAPI", "osv_to_nvd_cve"]

NVD_PATH = "/rest/json/cves/2.0"
MAX_BATCH = 1000

#: (status, JSON body, extra headers): one answer, before it is encoded.
Answer = tuple[int, Any, dict[str, str]]


class OSVAPI:
    """OSV and NVD shaped answers over records (a mapping by id, or an iterable); thread-safe."""

    def __init__(
        self,
        records: Mapping[str, dict[str, Any]] | Iterable[dict[str, Any]] = (),
        *,
        page_size: int = 1000,
        batch_page_size: int = 1000,
        nvd_records: Iterable[dict[str, Any]] = (),
        nvd_page_size: int = 2000,
    ) -> None:
        items = records.values() if isinstance(records, Mapping) else records
        self.page_size = page_size
        self.batch_page_size = batch_page_size
        self.nvd_page_size = nvd_page_size
        #: The apiKey header of each NVD request, in order (None when absent).
        self.nvd_api_keys: list[str | None] = []
        self._lock = threading.Lock()
        self._extra_nvd = list(nvd_records)
        self.records: dict[str, dict[str, Any]] = {}
        for record in items:
            self.records[record["id"]] = record
        #: id -> (body, {(ecosystem, normalised name)}, modified): see plant().
        self._planted: dict[str, tuple[Any, set[tuple[str, str]], str]] = {}
        #: (id, ecosystem, name, version, commit) -> (the record asked about, whether it affects):
        #: a batch of 1,000 pins took 60-90 ms to match, more than the simulated round trip it
        #: hides behind; a replaced record (set_record) is a new object, so its entries miss.
        self._affects_memo: dict[tuple[Any, ...], tuple[dict[str, Any], bool]] = {}
        self._reindex()

    def plant(self, vuln_id: str, body: Any, *, packages: Iterable[tuple[str, str]] | Iterable[str],
              modified: str = "2030-01-01T00:00:00Z") -> None:
        """Serve body (any JSON value, or bytes sent as they are) as the record vuln_id, and list
        (vuln_id, modified) for every query of packages: (ecosystem, name) pairs, or PyPI names."""
        named = {("PyPI", p) if isinstance(p, str) else (p[0], p[1]) for p in packages}
        with self._lock:
            self._planted[vuln_id] = (body, {(e, normalize_name(e, n)) for e, n in named}, modified)

    def planted_for(self, body: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
        """(id, body, modified) of the planted records listed for the package a query names."""
        package = body.get("package") or {}
        eco: str | None
        name: str | None
        if "purl" in package:
            eco, name, _ = parse_purl(package["purl"])
        else:
            eco = canonical_ecosystem(package["ecosystem"]) if package.get("ecosystem") else None
            name = package.get("name")
        if name is None:
            return []
        with self._lock:
            planted = sorted(self._planted.items())
        return [(vuln_id, planted_body, modified)
                for vuln_id, (planted_body, packages, modified) in planted
                if any(e == eco or eco is None for e, n in packages if n == normalize_name(e, name))]

    # ------------------------------------------------------------------ records
    def _reindex(self) -> None:
        """Rebuild the lookups by package, by commit and by CVE from self.records."""
        by_package: dict[tuple[str, str], list[str]] = {}
        by_commit: dict[str, list[str]] = {}
        by_cve: dict[str, list[dict[str, Any]]] = {}
        for vuln_id, record in sorted(self.records.items()):
            try:
                self._index(vuln_id, record, by_package, by_commit, by_cve)
            except (AttributeError, TypeError):
                pass  # a malformed record: indexed as far as it went, never a crash
        nvd = [osv_to_nvd_cve(cve, recs) for cve, recs in sorted(by_cve.items())]
        known = {c["id"] for c in self._extra_nvd}
        self._nvd = sorted([c for c in nvd if c["id"] not in known] + self._extra_nvd,
                           key=lambda c: c["id"])
        self._by_package, self._by_commit = by_package, by_commit
        self._ecosystems = sorted({e for e, _ in by_package})

    @staticmethod
    def _index(vuln_id: str, record: dict[str, Any], by_package: dict[tuple[str, str], list[str]],
               by_commit: dict[str, list[str]], by_cve: dict[str, list[dict[str, Any]]]) -> None:
        for entry in record.get("affected") or ():
            package = entry.get("package") or {}
            eco = str(package.get("ecosystem", ""))
            key = (eco, normalize_name(eco, str(package.get("name", ""))))
            ids = by_package.setdefault(key, [])
            if vuln_id not in ids:
                ids.append(vuln_id)
            for rng in entry.get("ranges") or ():
                for event in rng.get("events") or ():
                    for value in event.values():
                        by_commit.setdefault(str(value), []).append(vuln_id)
        for alias in [vuln_id, *(record.get("aliases") or ())]:
            if alias.startswith("CVE-"):
                by_cve.setdefault(alias, []).append(record)

    def set_record(self, record: dict[str, Any]) -> None:
        """Add or replace one record (e.g. a newer `modified`) while the server runs."""
        with self._lock:
            self.records[record["id"]] = record
            self._reindex()

    def match(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The records an OSV query body matches, sorted by id (what /v1/query pages over)."""
        package = body.get("package") or {}
        version, commit = body.get("version"), body.get("commit")
        eco: str | None
        name: str | None
        if "purl" in package:
            eco, name, purl_version = parse_purl(package["purl"])
            version = version or purl_version
        else:
            eco = canonical_ecosystem(package["ecosystem"]) if package.get("ecosystem") else None
            name = package.get("name")
        if name is None:
            ids = sorted(set(self._by_commit.get(str(commit), ()))) if commit else []
        else:
            ecosystems = [eco] if eco is not None else self._ecosystems
            ids = sorted({i for e in ecosystems
                          for i in self._by_package.get((e, normalize_name(e, name)), ())})
        return [record for record in map(self.records.__getitem__, ids)
                if self._affects_memoised(record, eco, name, version, commit)]

    def _affects_memoised(self, record: dict[str, Any], eco: str | None, name: str | None,
                          version: str | None, commit: str | None) -> bool:
        key = (record.get("id"), eco, name, version, commit)
        known = self._affects_memo.get(key)
        if known is not None and known[0] is record:
            return known[1]
        found = _affects(record, ecosystem=eco, name=name, version=version, commit=commit)
        if len(self._affects_memo) > 1_000_000:
            self._affects_memo.clear()
        self._affects_memo[key] = (record, found)
        return found

    # ------------------------------------------------------------------ endpoints
    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: Mapping[str, str] | Message) -> Answer:
        """(status, JSON body, extra headers) for one request; used by the HTTP handler."""
        if method == "POST" and path == "/v1/query":
            return self._query(body)
        if method == "POST" and path == "/v1/querybatch":
            return self._querybatch(body)
        if method == "GET" and path.startswith("/v1/vulns/"):
            vuln_id = unquote(path[len("/v1/vulns/"):])
            if vuln_id in self._planted:
                return 200, self._planted[vuln_id][0], {}
            record = self.records.get(vuln_id)
            if record is None:
                return 404, {"code": 5, "message": "Bug not found."}, {}
            return 200, record, {}
        if method == "GET" and path == NVD_PATH:
            self.nvd_api_keys.append(headers.get("apiKey"))
            return self._nvd_search(query)
        return 404, {"code": 5, "message": f"no route {method} {path}"}, {}

    def _page(self, matches: list[Any], token: Any, size: int) -> tuple[list[Any], str | None]:
        """The page of matches that token starts, and the token of the next page (None: last)."""
        start = int(token) if isinstance(token, str) and token.isdigit() else 0
        rest = start + size
        return matches[start:rest], (str(rest) if rest < len(matches) else None)

    def _query(self, body: Any) -> Answer:
        """POST /v1/query: full records, paged."""
        if not isinstance(body, dict):
            return 400, {"code": 3, "message": "invalid query"}, {}
        try:
            matches = self.match(body)
            matches += [b if not isinstance(b, bytes) else {"id": i, "modified": m}
                        for i, b, m in self.planted_for(body)]
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"code": 3, "message": f"invalid query: {exc}"}, {}
        page, token = self._page(matches, body.get("page_token"), self.page_size)
        out: dict[str, Any] = {"vulns": page} if page else {}
        if token:
            out["next_page_token"] = token
        return 200, out, {}

    def _querybatch(self, body: Any) -> Answer:
        """POST /v1/querybatch: ids and modified per query, each paged on its own."""
        queries = body.get("queries") if isinstance(body, dict) else None
        if not isinstance(queries, list):
            return 400, {"code": 3, "message": "expected queries"}, {}
        if len(queries) > MAX_BATCH:
            return 400, {"code": 3, "message": f"too many queries ({len(queries)} > {MAX_BATCH})"}, {}
        results = []
        for query in queries:
            try:
                matches = [{"id": r["id"], "modified": r["modified"]} for r in self.match(query)]
                matches += [{"id": i, "modified": m} for i, _, m in self.planted_for(query)]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return 400, {"code": 3, "message": f"invalid query: {exc}"}, {}
            page, token = self._page(matches, query.get("page_token"), self.batch_page_size)
            result: dict[str, Any] = {}
            if page:
                result["vulns"] = page
            if token:
                result["next_page_token"] = token
            results.append(result)
        return 200, {"results": results}, {}

    def _nvd_search(self, query: dict[str, list[str]]) -> Answer:
        """GET /rest/json/cves/2.0: CVE objects filtered like NVD's, paged by startIndex."""
        params = {k: v[0] for k, v in query.items()}
        found = self._nvd
        if "cveId" in params:
            found = [c for c in found if c["id"] == params["cveId"].upper()]
        if "keywordSearch" in params:
            words = params["keywordSearch"].lower().split()
            found = [c for c in found
                     if all(w in c["descriptions"][0]["value"].lower() for w in words)]
        if "cpeName" in params:
            want = params["cpeName"].split(":")[3:5]
            found = [c for c in found if any(
                m["criteria"].split(":")[3:5] == want for conf in c.get("configurations") or ()
                for node in conf["nodes"] for m in node["cpeMatch"])]
        try:
            start = int(params.get("startIndex", "0"))
            size = min(int(params.get("resultsPerPage", "2000")), self.nvd_page_size)
        except ValueError:
            return 404, {}, {"message": "Invalid startIndex or resultsPerPage"}
        page = found[start:start + size]
        return 200, {"resultsPerPage": len(page), "startIndex": start, "totalResults": len(found),
                     "format": "NVD_CVE", "version": "2.0",
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000"),
                     "vulnerabilities": [{"cve": c} for c in page]}, {}


def _nvd_time(value: str | None) -> str:
    return (value or "2000-01-01T00:00:00Z").rstrip("Z")[:23]


def osv_to_nvd_cve(cve_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """An NVD 2.0 `cve` object for a CVE that these OSV records alias (what NVD would answer for it)."""
    first = records[0]
    text = first.get("details") or first.get("summary") or cve_id
    packages = sorted({(a.get("package") or {}).get("name", "") for r in records
                       for a in r.get("affected") or ()} - {""})
    cpes = [{"vulnerable": True, "criteria": f"cpe:2.3:a:{p.lower()}:{p.lower()}:*:*:*:*:*:python:*:*"}
            for p in packages]
    return {
        "id": cve_id,
        "sourceIdentifier": "scancache-test",
        "published": _nvd_time(first.get("published")),
        "lastModified": _nvd_time(max(r.get("modified", "") for r in records)),
        "vulnStatus": "Rejected" if all(r.get("withdrawn") for r in records) else "Analyzed",
        "descriptions": [{"lang": "en", "value": text}],
        "references": [{"url": ref["url"], "source": "scancache-test"}
                       for ref in first.get("references") or () if ref.get("url")],
        "configurations": [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": cpes}]}],
    }


def _affects(record: Any, **query: Any) -> bool:
    """record_affects, False for a record whose shape cannot be evaluated (the server never crashes)."""
    try:
        return record_affects(record, **query)
    except (AttributeError, TypeError, KeyError, ValueError):
        return False
