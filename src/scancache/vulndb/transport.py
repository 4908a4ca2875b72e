"""The HTTP seam under JSONClient: send one request, return (status, headers, body bytes).

The default is pyreqwest (Rust's reqwest/hyper): measured on a 2-core machine against the loopback
OSV server (benchmarks/bench_http_clients.py), 0.16-0.3 ms of CPU per GET, aiohttp 0.2-0.45 ms and
httpx 1.5-5 ms (httpcore's pool scans every connection per request, so its cost grows with the
concurrency an audit wants); importing pyreqwest costs ~10 ms of CPU, aiohttp ~220 ms (it builds SSL
contexts and attrs classes at import). A cold audit is mostly GETs, so that decides it. HTTP/2 is
switched on (pyreqwest's default is off: its TLS hello offered only http/1.1), so over https the
client offers h2 by ALPN and a server that takes it (api.osv.dev does) carries every GET of an audit
on one connection, instead of one TLS handshake per connection in flight; plain http stays HTTP/1.1.
An httpx.AsyncClient passed by the caller is used as it is and never closed here.

Failures are one exception, TransportFailure, whose `kind` says what the retry policy needs:
"timeout", "connection" (refused, reset, dropped or cut short mid-body), "decode" (a body that
cannot be decompressed) or "too_large" (a body over max_body_bytes: read as a stream and dropped at
the limit, so a hostile server cannot make an audit hold gigabytes). Each transport imports its
client library only when built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Transport", "TransportFailure", "PyreqwestTransport",
           "HttpxTransport", "make_transport"]

#: Largest answer body read (decompressed): OSV's answers are kilobytes to a few megabytes.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


def _too_large(limit: int) -> TransportFailure:
    return TransportFailure("too_large", f"answer larger than {limit} bytes (max_response_bytes)")


async def _read_capped(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The body from chunks, or TransportFailure("too_large") as soon as it (or its declared
    Content-Length) passes limit."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        parts.append(bytes(chunk))
    return b"".join(parts)


class TransportFailure(Exception):
    """A request got no complete answer; kind is "timeout", "connection" or "decode"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class Transport:
    """One HTTP client behind one interface (see the module docstring)."""

    async def send(self, method: str, url: str, *, json: Any = None, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers (case-insensitive), body) of one request; raises TransportFailure."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections (only those this transport opened)."""


class PyreqwestTransport(Transport):
    """pyreqwest with up to `connections` connections, built on first use (inside the event loop)."""

    def __init__(self, *, timeout_seconds: float, connections: int, user_agent: str = "scancache",
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.timeout_seconds = timeout_seconds
        self.connections = connections
        self.user_agent = user_agent
        self.max_body_bytes = max_body_bytes
        self._client: Any = None

    def _open(self) -> Any:
        from datetime import timedelta

        from pyreqwest.client import ClientBuilder

        self._client = (ClientBuilder().max_connections(self.connections).user_agent(self.user_agent)
                        .timeout(timedelta(seconds=self.timeout_seconds)).error_for_status(False)
                        .http2(True).build())
        return self._client

    async def send(self, method: str, url: str, *, json: Any = None, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        from pyreqwest import exceptions as errors

        builder = (self._client or self._open()).request(method, url)
        if params:
            builder = builder.query(dict(params))
        if headers:
            builder = builder.headers(dict(headers))
        if json is not None:
            builder = builder.body_json(json)
        try:
            async with builder.build_streamed() as response:
                reader = response.body_reader

                async def chunks() -> AsyncIterator[bytes]:
                    while (chunk := await reader.read_chunk()) is not None:
                        yield chunk

                body = await _read_capped(chunks(), response.headers.get("content-length"),
                                          self.max_body_bytes)
                return response.status, response.headers, body
        except errors.RequestTimeoutError as exc:
            raise TransportFailure("timeout", type(exc).__name__) from None
        except errors.DecodeError as exc:
            raise TransportFailure("decode", f"{type(exc).__name__}: {exc}") from None
        except errors.RequestError as exc:  # connect, read, write and the rest
            raise TransportFailure("connection", f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
            # reqwest's runtime thread hands each result back holding the GIL, and ends that hold
            # after the answer is already delivered: a process that exits at once (a failed audit,
            # exit 2) could finalize the interpreter under it ("Fatal Python error:
            # PyGILState_Release", exit 134, in 1 run of 4 here). A short wait with the GIL released
            # lets that thread finish first.
            import asyncio

            await asyncio.sleep(0.002)


class HttpxTransport(Transport):
    """A caller's httpx.AsyncClient (never closed here)."""

    def __init__(self, client: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.client = client
        self.max_body_bytes = max_body_bytes

    async def send(self, method: str, url: str, *, json: Any = None, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Mapping[str, str], bytes]:
        import httpx

        try:
            async with self.client.stream(method, url, json=json, params=params,
                                          headers=headers) as response:
                body = await _read_capped(response.aiter_bytes(), response.headers.get("content-length"),
                                          self.max_body_bytes)
                return response.status_code, response.headers, body
        except httpx.DecodingError as exc:
            raise TransportFailure("decode", str(exc)) from None
        except httpx.TimeoutException as exc:
            raise TransportFailure("timeout", type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise TransportFailure("connection", f"{type(exc).__name__}: {exc}") from None


def make_transport(client: Any, *, timeout_seconds: float, connections: int,
                   max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Transport:
    """The transport for a caller's client (an httpx.AsyncClient, or a Transport of their own), or a
    new pyreqwest one when client is None; bodies over max_body_bytes fail as "too_large"."""
    if client is None:
        return PyreqwestTransport(timeout_seconds=timeout_seconds, connections=connections,
                                  max_body_bytes=max_body_bytes)
    if isinstance(client, Transport):
        return client
    return HttpxTransport(client, max_body_bytes)
