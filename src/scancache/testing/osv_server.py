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

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
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
        self._socket: socket.socket | None = None
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @classmethod
    def from_zip(cls, source: str | Path | bytes, **kwargs: Any) -> OSVTestServer:
        """A server over the records of an all.zip (path or bytes) or a directory of JSON files."""
        return cls(load_records(source), **kwargs)

    # ------------------------------------------------------------------ faults and counters
    def inject(self, kind: str, count: int = 1, *, path: str | None = None, **params: Any) -> None:
        """Make the next count requests (to path or below it, if given) fail as kind.

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
                if fault.path is None or _under(path, fault.path):
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
        assert self._socket is not None, "server not started"
        return f"http://127.0.0.1:{self._port}"

    @property
    def nvd_url(self) -> str:
        """The NVD CVE endpoint itself (http://127.0.0.1:PORT/rest/json/cves/2.0)."""
        return self.url + NVD_PATH

    def start(self) -> OSVTestServer:
        """Bind a free port on 127.0.0.1 and serve from an event loop in a daemon thread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket, self._port = sock, sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, ready), name="osv-test-server",
                                        daemon=True)
        self._thread.start()
        ready.wait(10)
        self._timer = threading.Timer(self.max_lifetime_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            # A client opening hundreds of connections at once must not see SYNs dropped and retried
            # later (asyncio's default backlog is 100): the benchmark would time the server.
            self._server = loop.run_until_complete(asyncio.start_server(
                self._connection, sock=sock, limit=_MAX_HEAD_BYTES, backlog=_BACKLOG))
            ready.set()
            loop.run_forever()
        finally:
            ready.set()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def stop(self) -> None:
        """Stop serving, close the socket and every open connection (idempotent)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if self._timer is not None:
            self._timer.cancel()
        if loop is None:
            return

        def shut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            loop.stop()

        try:
            loop.call_soon_threadsafe(shut)
        except RuntimeError:  # the loop already closed
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> OSVTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP/1.1 over asyncio
    # One event loop answers every connection: a thread per connection (http.server) spent
    # 0.5-0.75 ms of CPU per GET and switched threads 500 ways under a client that opens 500
    # connections, so answers left up to 0.4 s after their time and the benchmark timed the server.
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep-alive: requests answered one after another until the client closes (or asks to)."""
        self._writers.add(writer)
        try:
            while await self._request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # clients that hang up (timeouts, faults) are normal here
        except Exception:  # a server bug: say so, as http.server did, and close this connection
            import traceback

            traceback.print_exc()
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read and answer one request; False when the connection must close."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # closed between requests
        request_line, _, header_block = head[:-4].decode("latin-1").partition("\r\n")
        method, target, version = [*request_line.split(" "), "", ""][:3]
        headers = _Headers()
        for line in header_block.split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        length = headers.get("content-length") or "0"
        if not length.isdigit() or "chunked" in headers.get("transfer-encoding", "").lower():
            writer.write(_response(400, b'{"code": 3, "message": "bad request"}'))
            return False
        raw = await reader.readexactly(int(length)) if int(length) else b""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(method, target, headers, raw, writer) and keep_alive
        finally:
            self.in_flight -= 1

    async def _answer(self, method: str, target: str, headers: _Headers, raw: bytes,
                      writer: asyncio.StreamWriter) -> bool:
        """Answer one request (faults applied); False when the fault closed the connection."""
        parts = urlsplit(target)
        if parts.path == CONTROL_PATH:  # counters for a server in another process; not counted
            if method == "POST":
                self.reset_counts()
            writer.write(_response(200, json.dumps({"requests": dict(self.requests)}).encode()))
            return True
        self._count(method, parts.path)
        # Each answer waits out the latency from its arrival, whatever computing it took.
        respond_at = time.monotonic() + self.latency_seconds
        fault = self._take_fault(parts.path)
        if fault is not None:
            kind, params = fault.kind, fault.params
            if kind in ("429", "503", "status"):
                status = int(params.get("status", 429 if kind == "429" else 503))
                extra = {}
                if params.get("retry_after") is not None:
                    extra["Retry-After"] = str(params["retry_after"])
                await _until(respond_at)
                writer.write(_response(status, json.dumps({"code": 8, "message": "injected"}).encode(),
                                       extra))
                return True
            if kind == "slow":
                await asyncio.sleep(float(params.get("delay", 1.0)))
            if kind == "drop":
                return False  # closed without an answer
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            await _until(respond_at)
            writer.write(_response(400, b'{"code": 3, "message": "body is not JSON"}'))
            return True
        query = parse_qs(parts.query)
        if method == "GET" and parts.path.startswith("/v1/vulns/"):  # a dict lookup: answered here
            status, data, extra = self.answer(method, parts.path, query, body, headers)
        else:  # matching a batch takes milliseconds: in a thread, so the loop keeps answering
            status, data, extra = await asyncio.get_running_loop().run_in_executor(
                None, self.answer, method, parts.path, query, body, headers)
        payload = self._encode(data)
        length = len(payload)
        if fault is not None and fault.kind == "truncated":
            payload = payload[: len(payload) // 2]
        elif fault is not None and fault.kind == "malformed":
            payload = payload[: max(1, len(payload) // 2)]  # a cut body with a matching length
            length = len(payload)
        elif fault is not None and fault.kind == "wrong_shape":
            payload = b'{"vulns": "not a list", "results": {"oops": true}}'
            length = len(payload)
        await _until(respond_at)
        writer.write(_response(status, payload, extra, length=length))  # headers and body: one write
        if fault is not None and fault.kind == "truncated":
            await writer.drain()
            return False
        return True


def _under(path: str, prefix: str) -> bool:
    """Whether path is prefix or lies under it: "/v1/vulns/" covers every record, "/v1/query" is
    /v1/query itself (not /v1/querybatch)."""
    return path.startswith(prefix) and (prefix.endswith("/") or path[len(prefix):len(prefix) + 1]
                                        in ("", "/"))


#: Connections waiting to be accepted (a client may open hundreds at once).
_BACKLOG = 1024
#: Longest request line plus headers read (clients send a few hundred bytes).
_MAX_HEAD_BYTES = 64 * 1024


class _Headers(dict[str, str]):
    """Request headers by lower-case name; get() takes any case (as email.message.Message does)."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


async def _until(when: float) -> None:
    """Sleep until time.monotonic() reaches when (the simulated round trip)."""
    wait = when - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)


def _response(status: int, payload: bytes, headers: Mapping[str, str] | None = None, *,
              length: int | None = None) -> bytes:
    """One HTTP/1.1 answer, status line to body, as bytes (sent in one write: no Nagle stall)."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {status} {phrase}", "Content-Type: application/json",
             f"Content-Length: {len(payload) if length is None else length}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


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
        while server._loop is not None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
