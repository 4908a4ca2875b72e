"""Fixtures for loopback dns servers: `dns_server` (a LoopbackDNSServer on 127.0.0.1) and `dns_clock`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scancache.testing.dns_server import LoopbackDNSServer

#: Records every dns_server starts with; tests add their own names.
DEFAULT_RECORDS = {"example.test": ["192.0.2.1", "2001:db8::1"]}


class FakeClock:
    """Epoch seconds that move only when a test says so (expiry without sleeping)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def dns_server() -> Iterator[LoopbackDNSServer]:
    """A fresh loopback DNS server (UDP+TCP on a free port), stopped after the test."""
    with LoopbackDNSServer(DEFAULT_RECORDS, ttl=300, soa_minimum=60) as server:
        yield server


@pytest.fixture
def dns_clock() -> FakeClock:
    """A clock to inject into DNSCache/Cache: call .advance(seconds) to expire entries."""
    return FakeClock()
