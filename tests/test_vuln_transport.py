"""The OSV transport's HTTP versions: HTTP/2 offered over TLS (ALPN), plain HTTP/1.1 on http://."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from scancache.testing.osv_server import OSVTestServer
from scancache.vulndb.transport import PyreqwestTransport, TransportFailure


def _first_tls_record(received: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A loopback listener that keeps the first bytes a client sends (its TLS ClientHello), then
    hangs up: the hello alone says which protocols the client offers by ALPN."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            received.append(data)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return listener, thread


def test_the_client_offers_http2_and_http11_by_alpn_over_tls():
    received: list[bytes] = []
    listener, thread = _first_tls_record(received)
    port = listener.getsockname()[1]
    transport = PyreqwestTransport(timeout_seconds=5, connections=4)

    async def ask() -> None:
        try:
            with pytest.raises(TransportFailure):  # the listener hangs up after the hello
                await transport.send("GET", f"https://127.0.0.1:{port}/v1/vulns/X")
        finally:
            await transport.aclose()

    asyncio.run(ask())
    thread.join(5)
    listener.close()
    assert received and received[0][:1] == b"\x16"  # a TLS handshake record
    hello = received[0]
    # ALPN lists protocols as length-prefixed strings: h2 first, then http/1.1.
    assert b"\x02h2\x08http/1.1" in hello


def test_plain_http_is_answered_by_a_server_that_speaks_only_http11(osv_records):
    """HTTP/2 switched on must not mean h2c: the loopback server (HTTP/1.1 only) still answers."""
    vuln_id = next(iter(osv_records))
    with OSVTestServer(osv_records) as server:
        transport = PyreqwestTransport(timeout_seconds=5, connections=4)

        async def ask() -> int:
            try:
                status, _, body = await transport.send("GET", f"{server.url}/v1/vulns/{vuln_id}")
                assert vuln_id.encode() in body
                return int(status)
            finally:
                await transport.aclose()

        assert asyncio.run(ask()) == 200
        assert server.requests["/v1/vulns"] == 1
