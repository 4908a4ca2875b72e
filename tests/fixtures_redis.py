"""Fixtures for loopback redis servers: one per session, a flushed URL per test, a private one for
tests that stop, restart or pause their server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scancache.testing.redis_server import RedisServer, find_redis_server

_NO_BINARY = "redis-server binary not found on PATH (install redis-server to run the Redis tests)"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server shared by the session; tests must not stop or pause it (use fresh_redis_server)."""
    if find_redis_server() is None:
        pytest.skip(_NO_BINARY)
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, emptied (FLUSHALL) before the test."""
    if redis_server.paused:
        redis_server.resume()
    if not redis_server.running:  # a test broke the rule above: give the next one a server
        redis_server.start()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A private redis-server for one test, free to stop(), start(), pause() and resume()."""
    if find_redis_server() is None:
        pytest.skip(_NO_BINARY)
    with RedisServer() as server:
        yield server
