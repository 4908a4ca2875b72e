"""A loopback OSV API (and NVD CVE API) server over real OSV records, with fault injection.

    from scancache.testing.osv_server import OSVTestServer
    with OSVTestServer.from_zip("osv-pypi-all.zip", page_size=2) as server:
        ...  # server.url is the OSV base (paths /v1/... follow), server.nvd_url the NVD endpoint
        server.inject("429", count=2, retry_after="1", path="/v1/querybatch")
        server.requests["/v1/querybatch"]  # requests answered per path

It serves POST /v1/query, POST /v1/querybatch, GET /v1/vulns/{id} and GET /rest/json/cves/2.0 with
the answers OSVAPI (osv_api.py) builds from the records, paged as OSV and NVD page them.

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
from urllib.parse import parse_qs, urlsplit

from scancache.testing.osv_api import MAX_BATCH, NVD_PATH, OSVAPI
from scancache.vulndb.dump import all_zip_bytes, load_records

__all__ = ["OSVTestServer", "load_records", "all_zip_bytes", "FAULT_KINDS", "MAX_BATCH", "NVD_PATH"]

FAULT_KINDS = ("429", "503", "status", "slow", "drop", "truncated", "malformed", "wrong_shape")
#: GET: {"requests": counters}; POST: the same, then reset. For a server run in another process.
CONTROL_PATH = "/_scancache/requests"


@dataclass
class _Fault:
    """One queued fault: what to do, to how many more requests, on which path prefix."""

    kind: str
    remaining: int
    path: str | None
    params: dict[str, Any] = field(default_factory=dict)


class OSVTestServer(OSVAPI):
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
        latency_seconds: float = 0.0,
    ) -> None:
        if latency_seconds < 0:
            raise ValueError(f"latency_seconds must not be negative, got {latency_seconds}")
        #: Every counted answer waits this long first: a network round trip, for comparisons that
        #: should not pretend the API is on loopback.
        self.latency_seconds = latency_seconds
        super().__init__(records, page_size=page_size, batch_page_size=batch_page_size,
                         nvd_records=nvd_records, nvd_page_size=nvd_page_size)
        self.max_lifetime_seconds = max_lifetime_seconds
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, str]] = []
        #: Requests being answered right now, and the most there ever were at once (what a client's
        #: concurrency limit allows through).
        self.in_flight = 0
        self.max_in_flight = 0
        self._encoded: dict[int, tuple[Any, bytes]] = {}
        self._faults: list[_Fault] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @classmethod
    def from_zip(cls, source: str | Path | bytes, **kwargs: Any) -> OSVTestServer:
        """A server over the records of an all.zip (path or bytes) or a directory of JSON files."""
        return cls(load_records(source), **kwargs)

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
            self.max_in_flight = self.in_flight
            self.nvd_api_keys.clear()

    @property
    def total_requests(self) -> int:
        """Requests answered (or failed on purpose) since start or the last reset_counts()."""
        return sum(self.requests.values())

    def _take_fault(self, path: str) -> _Fault | None:
        """The first queued fault for path, consumed once (None: answer normally)."""
        with self._lock:
            for fault in self._faults:
                if fault.path is None or path.startswith(fault.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _encode(self, data: Any) -> bytes:
        """The JSON bytes of an answer; a record's are kept (by the record object's identity, so a
        replaced record is encoded anew): the server must not be what a client benchmark times."""
        if isinstance(data, bytes):
            return data
        if isinstance(data, dict) and data.get("id") in self.records:
            kept = self._encoded.get(id(data))
            if kept is not None and kept[0] is data:
                return kept[1]
            payload = json.dumps(data, separators=(",", ":")).encode()
            self._encoded[id(data)] = (data, payload)
            return payload
        return json.dumps(data, separators=(",", ":")).encode()

    def _count(self, method: str, path: str) -> None:
        """Count one request under its path (every /v1/vulns/{id} under /v1/vulns)."""
        label = "/v1/vulns" if path.startswith("/v1/vulns/") else path
        with self._lock:
            self.requests[label] += 1
            self.request_log.append((method, path))

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
    # socketserver's default listen backlog is 5: a client opening 50+ connections at once would
    # see SYNs dropped and retried a second later, and the benchmark would time the server.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _make_handler(server: OSVTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections like against OSV
        disable_nagle_algorithm = True  # TCP_NODELAY: no Nagle stall against delayed ACKs
        #: When the answer may leave: the request's arrival plus the simulated latency.
        respond_at = 0.0

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._tracked("GET")

        def do_POST(self) -> None:
            self._tracked("POST")

        def _tracked(self, method: str) -> None:
            with server._lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._handle(method)
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _send(self, status: int, payload: bytes, headers: Mapping[str, str] | None = None,
                  *, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            wait = self.respond_at - time.monotonic()
            if wait > 0:  # the simulated round trip, counted from arrival (work done meanwhile)
                time.sleep(wait)
            # Headers and body in one send (end_headers would send them apart).
            self._headers_buffer.extend((b"\r\n", payload))  # type: ignore[attr-defined]  # stdlib-private
            self.flush_headers()

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
            # One thread per connection, so requests overlap; each answer waits out the latency
            # from its arrival, whatever computing it took.
            self.respond_at = time.monotonic() + server.latency_seconds
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
            payload = server._encode(data)
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
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds every answer waits first (a simulated network round trip)")
    args = parser.parse_args(argv)
    server = OSVTestServer.from_zip(args.source, page_size=args.page_size,
                                    max_lifetime_seconds=args.lifetime,
                                    latency_seconds=args.latency).start()
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
