"""A loopback OSV API (and NVD CVE API) server over real OSV records, with fault injection.

    from scancache.testing.osv_server import OSVTestServer
    with OSVTestServer.from_zip("osv-pypi-all.zip", page_size=2) as server:
        ...  # server.url is the OSV base (paths /v1/... follow), server.nvd_url the NVD endpoint
        server.inject("429", count=2, retry_after="1", path="/v1/querybatch")
        server.requests["/v1/querybatch"]  # requests answered per path

It serves POST /v1/query (paged every `page_size` records via next_page_token), POST /v1/querybatch
(ids and modified only; at most 1,000 queries, else 400; paged per query every `batch_page_size`),
GET /v1/vulns/{id} (404 with OSV's error body when unknown) and GET /rest/json/cves/2.0 (cveId,
cpeName, keywordSearch, startIndex, resultsPerPage, capped at `nvd_page_size`) built from the
records' CVE aliases plus any raw NVD `cve` objects given. Version matching uses the same range
evaluation as the offline mirror (PEP 440 for PyPI, semver where the ecosystem uses it).

Faults (`inject`): "429" (with Retry-After), "503", "status" (any code), "slow" (delay seconds,
then a normal answer), "drop" (connection closed without an answer), "truncated" (the body cut
short of its Content-Length), "malformed" (a 200 whose body is not JSON), "wrong_shape" (valid JSON
of the wrong shape). Only 127.0.0.1, a free port; a stop timer ends it even if nobody calls stop().
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from scancache.vulndb.dump import all_zip_bytes, load_records
from scancache.vulndb.nvd import osv_to_nvd_cve
from scancache.vulndb.query import canonical_ecosystem, parse_purl
from scancache.vulndb.ranges import normalize_name, record_affects

__all__ = ["OSVTestServer", "load_records", "all_zip_bytes", "FAULT_KINDS"]

FAULT_KINDS = ("429", "503", "status", "slow", "drop", "truncated", "malformed", "wrong_shape")
NVD_PATH = "/rest/json/cves/2.0"
#: GET: {"requests": counters}; POST: the same, then reset. For a server run in another process.
CONTROL_PATH = "/_scancache/requests"
MAX_BATCH = 1000


@dataclass
class _Fault:
    kind: str
    remaining: int
    path: str | None
    params: dict[str, Any] = field(default_factory=dict)


class OSVTestServer:
    """OSV + NVD shaped HTTP server on 127.0.0.1 (see the module docstring); a context manager."""

    def __init__(
        self,
        records: Mapping[str, dict[str, Any]] | Iterable[dict[str, Any]] = (),
        *,
        page_size: int = 1000,
        batch_page_size: int = 1000,
        nvd_records: Iterable[dict[str, Any]] = (),
        nvd_page_size: int = 2000,
        max_lifetime_seconds: float = 600.0,
    ) -> None:
        items = records.values() if isinstance(records, Mapping) else records
        self.page_size = page_size
        self.batch_page_size = batch_page_size
        self.nvd_page_size = nvd_page_size
        self.max_lifetime_seconds = max_lifetime_seconds
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, str]] = []
        self.nvd_api_keys: list[str | None] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._extra_nvd = list(nvd_records)
        self.records: dict[str, dict[str, Any]] = {}
        for record in items:
            self.records[record["id"]] = record
        self._reindex()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @classmethod
    def from_zip(cls, source: str | Path | bytes, **kwargs: Any) -> OSVTestServer:
        """A server over the records of an all.zip (path or bytes) or a directory of JSON files."""
        return cls(load_records(source), **kwargs)

    # ------------------------------------------------------------------ data
    def _reindex(self) -> None:
        by_package: dict[tuple[str, str], list[str]] = {}
        by_commit: dict[str, list[str]] = {}
        by_cve: dict[str, list[dict[str, Any]]] = {}
        for vuln_id, record in sorted(self.records.items()):
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
        nvd = [osv_to_nvd_cve(cve, recs) for cve, recs in sorted(by_cve.items())]
        known = {c["id"] for c in self._extra_nvd}
        self._nvd = sorted([c for c in nvd if c["id"] not in known] + self._extra_nvd,
                           key=lambda c: c["id"])
        self._by_package, self._by_commit = by_package, by_commit
        self._ecosystems = sorted({e for e, _ in by_package})

    def set_record(self, record: dict[str, Any]) -> None:
        """Add or replace one record (e.g. a newer `modified`) while the server runs."""
        with self._lock:
            self.records[record["id"]] = record
            self._reindex()

    def match(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The records an OSV query body matches, sorted by id (what /v1/query pages over)."""
        package = body.get("package") or {}
        version, commit = body.get("version"), body.get("commit")
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
        return [self.records[i] for i in ids
                if record_affects(self.records[i], ecosystem=eco, name=name, version=version,
                                  commit=commit)]

    # ------------------------------------------------------------------ faults and counters
    def inject(self, kind: str, count: int = 1, *, path: str | None = None, **params: Any) -> None:
        """Make the next count requests (to paths starting with path, if given) fail as kind.

        params: retry_after (str, for "429"/"503"), status (int, for "status"), delay (seconds, for
        "slow"). Faults queue in order; each request consumes at most one.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (choose from {', '.join(FAULT_KINDS)})")
        with self._lock:
            self._faults.append(_Fault(kind, count, path, params))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def reset_counts(self) -> None:
        """Zero the request counters and log."""
        with self._lock:
            self.requests.clear()
            self.request_log.clear()
            self.nvd_api_keys.clear()

    @property
    def total_requests(self) -> int:
        """Requests answered (or failed on purpose) since start or the last reset_counts()."""
        return sum(self.requests.values())

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _count(self, method: str, path: str) -> None:
        label = "/v1/vulns" if path.startswith("/v1/vulns/") else path
        with self._lock:
            self.requests[label] += 1
            self.request_log.append((method, path))

    # ------------------------------------------------------------------ endpoints
    def answer(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, extra headers) for one request; used by the HTTP handler."""
        if method == "POST" and path == "/v1/query":
            return self._query(body)
        if method == "POST" and path == "/v1/querybatch":
            return self._querybatch(body)
        if method == "GET" and path.startswith("/v1/vulns/"):
            record = self.records.get(unquote(path[len("/v1/vulns/"):]))
            if record is None:
                return 404, {"code": 5, "message": "Bug not found."}, {}
            return 200, record, {}
        if method == "GET" and path == NVD_PATH:
            self.nvd_api_keys.append(headers.get("apiKey"))
            return self._nvd_search(query)
        return 404, {"code": 5, "message": f"no route {method} {path}"}, {}

    def _page(self, matches: list[Any], token: Any, size: int) -> tuple[list[Any], str | None]:
        start = int(token) if isinstance(token, str) and token.isdigit() else 0
        rest = start + size
        return matches[start:rest], (str(rest) if rest < len(matches) else None)

    def _query(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict):
            return 400, {"code": 3, "message": "invalid query"}, {}
        try:
            matches = self.match(body)
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"code": 3, "message": f"invalid query: {exc}"}, {}
        page, token = self._page(matches, body.get("page_token"), self.page_size)
        out: dict[str, Any] = {"vulns": page} if page else {}
        if token:
            out["next_page_token"] = token
        return 200, out, {}

    def _querybatch(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        queries = body.get("queries") if isinstance(body, dict) else None
        if not isinstance(queries, list):
            return 400, {"code": 3, "message": "expected queries"}, {}
        if len(queries) > MAX_BATCH:
            return 400, {"code": 3, "message": f"too many queries ({len(queries)} > {MAX_BATCH})"}, {}
        results = []
        for query in queries:
            try:
                matches = self.match(query)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return 400, {"code": 3, "message": f"invalid query: {exc}"}, {}
            page, token = self._page(matches, query.get("page_token"), self.batch_page_size)
            result: dict[str, Any] = {}
            if page:
                result["vulns"] = [{"id": r["id"], "modified": r["modified"]} for r in page]
            if token:
                result["next_page_token"] = token
            results.append(result)
        return 200, {"results": results}, {}

    def _nvd_search(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
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

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """The OSV API base, e.g. http://127.0.0.1:PORT (paths /v1/... follow it)."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def nvd_url(self) -> str:
        """The NVD CVE endpoint itself (http://127.0.0.1:PORT/rest/json/cves/2.0)."""
        return self.url + NVD_PATH

    def start(self) -> OSVTestServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="osv-test-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_lifetime_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if self._timer is not None:
            self._timer.cancel()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> OSVTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHTTPServer(ThreadingHTTPServer):
    """Clients that hang up (timeouts, faults) are normal here: no tracebacks on stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _make_handler(server: OSVTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections like against OSV
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _send(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None,
                  *, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            size = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(size) if size else b""
            if parts.path == CONTROL_PATH:  # counters for a server in another process; not counted
                if method == "POST":
                    server.reset_counts()
                self._send(200, json.dumps({"requests": dict(server.requests)}).encode())
                return
            server._count(method, parts.path)
            fault = server._take_fault(parts.path)
            if fault is not None and self._fault(fault):
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send(400, b'{"code": 3, "message": "body is not JSON"}')
                return
            status, data, headers = server.answer(method, parts.path, parse_qs(parts.query), body,
                                                  self.headers)
            payload = json.dumps(data, separators=(",", ":")).encode()
            if fault is not None and fault.kind == "truncated":
                self._send(status, payload[: len(payload) // 2], headers, length=len(payload))
                self.close_connection = True
                return
            if fault is not None and fault.kind == "malformed":
                payload = payload[: max(1, len(payload) // 2)]  # a cut body with a matching length
            if fault is not None and fault.kind == "wrong_shape":
                payload = b'{"vulns": "not a list", "results": {"oops": true}}'
            self._send(status, payload, headers)

        def _fault(self, fault: _Fault) -> bool:
            """Apply a fault; True when it replaced the answer entirely."""
            kind, params = fault.kind, fault.params
            if kind in ("429", "503", "status"):
                status = int(params.get("status", 429 if kind == "429" else 503))
                headers = {}
                if params.get("retry_after") is not None:
                    headers["Retry-After"] = str(params["retry_after"])
                self._send(status, json.dumps({"code": 8, "message": "injected"}).encode(), headers)
                return True
            if kind == "slow":
                time.sleep(float(params.get("delay", 1.0)))
                return False
            if kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return True
            return False  # truncated / malformed / wrong_shape alter the normal answer

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve a dump until killed: `python -m scancache.testing.osv_server ALL.ZIP [--page-size N]`.

    Prints the OSV base URL and the NVD URL on the first two lines of stdout.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Loopback OSV/NVD server over an OSV all.zip")
    parser.add_argument("source", help="an OSV all.zip or a directory of <ID>.json records")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--lifetime", type=float, default=3600.0, help="seconds before it stops itself")
    args = parser.parse_args(argv)
    server = OSVTestServer.from_zip(args.source, page_size=args.page_size,
                                    max_lifetime_seconds=args.lifetime).start()
    print(server.url, flush=True)
    print(server.nvd_url, flush=True)
    try:
        while server._httpd is not None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
