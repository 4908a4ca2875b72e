"""Fixtures for loopback dns servers: `dns_server` (a LoopbackDNSServer on 127.0.0.1) and `dns_clock`."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from scancache.dns.cache import DNSCache
from scancache.dns.config import DNSConfig
from scancache.testing.dns_server import LoopbackDNSServer
from support import FakeClock

#: Records every dns_server starts with; tests add their own names.
DEFAULT_RECORDS = {"example.test": ["192.0.2.1", "2001:db8::1"]}


class UDPResponder:
    """A bare loopback UDP socket answering each query with the packets reply() returns.

    For test doubles that misbehave in ways a real server never would (forged ids, no SOA...).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def reply(self, query: bytes) -> list[bytes]:
        """The packets to send back for query, in order."""
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        while not self.stopping:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:  # the 0.1 s timeout: look at self.stopping again
                continue
            for packet in self.reply(query):
                self.sock.sendto(packet, peer)


@pytest.fixture
def dns_server() -> Iterator[LoopbackDNSServer]:
    """A fresh loopback DNS server (UDP+TCP on a free port), stopped after the test."""
    with LoopbackDNSServer(DEFAULT_RECORDS, ttl=300, soa_minimum=60) as server:
        yield server


@pytest.fixture
def dns_clock() -> FakeClock:
    """A clock to inject into DNSCache/Cache: call .advance(seconds) to expire entries."""
    return FakeClock()


@pytest.fixture
async def make_dns(dns_server: LoopbackDNSServer, dns_clock: FakeClock
                   ) -> AsyncIterator[Callable[..., DNSCache]]:
    """DNSCache factory pointed at dns_server with the fake clock; closes what it made."""
    made: list[DNSCache] = []

    def factory(**overrides: Any) -> DNSCache:
        settings = {"timeout_seconds": 0.2, "attempts": 2, "stale_ttl_seconds": 600, **overrides}
        dns = DNSCache(DNSConfig(**settings), nameservers=[dns_server.address], clock=dns_clock)
        made.append(dns)
        return dns

    yield factory
    for dns in made:
        await dns.aclose()
