"""Every Redis client scancache makes: connect_sync/connect_async (cluster-aware, one set of timeouts),
and RedisClients, RedisBackend's one sync client and one asyncio client per event loop.

Any component that talks to Redis (the cache, the NVD rate limiter) builds its client here, so
`redis+cluster://` and `?cluster=true` mean the same thing everywhere.

An asyncio client is bound to the event loop that created it, so each loop gets its own, and a client
whose loop has closed (asyncio.run() ended without aclose()) has its sockets closed directly.
This module imports redis-py at import time; the Cache factory imports it only for Redis configs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, NamedTuple

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from scancache.cache.urls import parse_redis_url, redact_url

__all__ = ["ASYNC_MAX_CONNECTIONS", "LoopClient", "RedisClients", "client_options", "connect_async",
           "connect_sync", "parse_redis_url", "redact_url"]

#: Concurrent commands (and so connections) per event loop; more tasks wait on a semaphore, which
#: is cheaper per call than redis-py's BlockingConnectionPool and never raises MaxConnectionsError.
ASYNC_MAX_CONNECTIONS = 32


def _close_orphaned(client: Any) -> None:
    """Close the sockets of an asyncio client whose event loop is closed (it can await nothing).

    The transports cannot be closed the normal way (that schedules a callback on the dead loop), so
    close each socket directly; otherwise they linger until garbage collection warns about them.
    """
    pool = getattr(client, "connection_pool", None)
    connections = [*getattr(pool, "_available_connections", ()), *getattr(pool, "_in_use_connections", ())]
    for connection in connections:
        writer = getattr(connection, "_writer", None)
        if writer is None:
            continue
        with contextlib.suppress(Exception):
            transport = writer.transport
            sock = getattr(transport, "_sock", None)
            if sock is not None:
                sock.close()
                # Mark the transport closed so its and its StreamWriter's __del__ stay quiet.
                transport._sock = None
                transport._closing = True
        connection._writer = connection._reader = None


def client_options(cluster: bool, timeout_seconds: float) -> dict[str, Any]:
    """Keyword arguments every scancache Redis client is built with: timeouts, no redis-py retries
    (callers handle outages: breakers, fallbacks), and partial slot coverage allowed in a cluster."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
    }
    if cluster:
        # Keep serving the slots that have an owner while another's owner is down or being
        # replaced (a failover), instead of refusing the whole cluster.
        options["require_full_coverage"] = False
    else:
        options["health_check_interval"] = 0
    return options


def connect_sync(url: str, *, timeout_seconds: float, **extra: Any) -> Any:
    """A sync redis-py client for a scancache Redis URL: RedisCluster for `redis+cluster://` or
    `?cluster=true`, Redis otherwise. The one place every component gets its clients from."""
    client_url, cluster = parse_redis_url(url)
    factory = redis.cluster.RedisCluster if cluster else redis.Redis
    return factory.from_url(client_url, **client_options(cluster, timeout_seconds), **extra)


def connect_async(url: str, *, timeout_seconds: float, max_connections: int | None = None) -> Any:
    """An asyncio redis-py client for a scancache Redis URL (cluster-aware, as connect_sync).

    It binds to the event loop that first uses it. max_connections caps a single server's pool
    (a cluster client keeps one pool per node)."""
    client_url, cluster = parse_redis_url(url)
    factory = redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis
    extra: dict[str, Any] = {}
    if max_connections is not None and not cluster:
        extra["max_connections"] = max_connections
    return factory.from_url(client_url, **client_options(cluster, timeout_seconds), **extra)


class LoopClient(NamedTuple):
    """The asyncio client of one event loop and the gate that bounds its concurrent commands."""

    client: Any
    gate: asyncio.Semaphore


class RedisClients:
    """The clients of one Redis (or Redis Cluster) URL, created on first use.

    socket_timeout and socket_connect_timeout are timeout_seconds, and redis-py's own retries are off
    (RedisBackend's circuit breaker handles outages). Thread-safe.
    """

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.url = url
        self.cluster = parse_redis_url(url)[1]
        self.timeout_seconds = timeout_seconds
        self._sync: Any = None
        self._sync_lock = threading.Lock()
        self._async: dict[asyncio.AbstractEventLoop, LoopClient] = {}

    def existing_sync(self) -> Any:
        """The sync client if it was created already, else None (no I/O)."""
        return self._sync

    def owner(self, client: Any, name: str) -> str:
        """host:port of the primary that owns key `name` as client last saw the cluster, or "" when
        unknown yet (client None or not initialised). No I/O: a CRC16 and a dict lookup."""
        if client is None:
            return ""
        try:
            nodes = client.nodes_manager.slots_cache.get(key_slot(name.encode("utf-8", "surrogatepass")))
        except (AttributeError, UnicodeError):
            return ""
        return str(nodes[0].name) if nodes else ""

    def sync(self) -> Any:
        """The process's sync client (its connection pool is thread-safe)."""
        client = self._sync
        if client is None:
            with self._sync_lock:
                client = self._sync
                if client is None:
                    client = self._sync = connect_sync(self.url, timeout_seconds=self.timeout_seconds)
        return client

    def for_running_loop(self) -> LoopClient:
        """The running event loop's client and gate; must be called from a coroutine."""
        loop = asyncio.get_running_loop()
        state = self._async.get(loop)
        if state is None:
            # A client is bound to the loop that created it: never reuse one across loops, and
            # release those whose loop has closed (asyncio.run() ended without aclose()).
            for old, orphan in list(self._async.items()):  # list(): other threads' loops may add
                if old.is_closed() and self._async.pop(old, None) is not None:
                    _close_orphaned(orphan.client)
            state = self._async[loop] = LoopClient(self._new_async_client(),
                                                   asyncio.Semaphore(ASYNC_MAX_CONNECTIONS))
        return state

    def _new_async_client(self) -> Any:
        """A new asyncio client, capped at ASYNC_MAX_CONNECTIONS connections (single server)."""
        return connect_async(self.url, timeout_seconds=self.timeout_seconds,
                             max_connections=ASYNC_MAX_CONNECTIONS)

    def close(self) -> None:
        """Close the sync client and the asyncio clients of loops that are not running.

        Clients of a loop running in another thread are closed on that loop; the sockets of a
        client whose loop has closed are closed directly. Never raises.
        """
        client, self._sync = self._sync, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        clients, self._async = self._async, {}
        for loop, (aclient, _) in clients.items():
            try:
                if loop.is_closed():
                    _close_orphaned(aclient)
                elif loop.is_running():
                    asyncio.run_coroutine_threadsafe(aclient.aclose(), loop)
                else:
                    closing = aclient.aclose()
                    try:
                        loop.run_until_complete(closing)
                    except Exception:
                        closing.close()  # never started: no "never awaited" warning
                        raise
            except Exception:  # e.g. another loop runs in this thread: close the sockets directly
                _close_orphaned(aclient)

    async def aclose(self) -> None:
        """Close the running loop's asyncio client, then everything close() handles. Never raises."""
        state = self._async.pop(asyncio.get_running_loop(), None)
        if state is not None:
            with contextlib.suppress(Exception):
                await state.client.aclose()
        self.close()
