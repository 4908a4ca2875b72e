"""A throwaway Redis Cluster on 127.0.0.1 for tests: a few redis-server nodes, slots spread, joined.

    with RedisClusterServer() as cluster:
        cache = Cache(CacheConfig(cache_type="redis", redis_url=cluster.url))

start() assigns slots and joins the nodes itself (no redis-cli needed); each node is a RedisServer,
so it is killed however the test ends.
"""

from __future__ import annotations

import socket
import time

from scancache.testing.redis_server import RedisServer, RedisServerError, send_command

__all__ = ["RedisClusterServer", "free_cluster_port"]

_CLUSTER_SLOTS = 16384


def _port_is_free(host: str, port: int) -> bool:
    """True if port can be bound on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_cluster_port(host: str = "127.0.0.1") -> int:
    """A free port p <= 55535 whose cluster bus port p + 10000 is free too (Redis Cluster needs both)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 55535)
        if _port_is_free(host, port) and _port_is_free(host, port + 10000):
            return port
    raise RedisServerError("no free port pair for a Redis Cluster node")


class RedisClusterServer:
    """A throwaway Redis Cluster: `nodes` primaries (no replicas) on 127.0.0.1, slots spread evenly.

    url is `redis+cluster://127.0.0.1:port` of the first node (the scheme scancache reads as "use
    RedisCluster"). start() assigns slots and joins the nodes itself (no redis-cli needed), then
    waits, bounded by startup_timeout, until every node reports cluster_state:ok.
    """

    def __init__(self, nodes: int = 3, *, startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.servers = [
            RedisServer(port=free_cluster_port(), startup_timeout=startup_timeout, extra_args=[
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000",
            ])
            for _ in range(nodes)
        ]

    @property
    def url(self) -> str:
        """redis+cluster://host:port of the first node (any node bootstraps the client)."""
        first = self.servers[0]
        return f"redis+cluster://{first.host}:{first.port}"

    def start(self) -> RedisClusterServer:
        """Start every node, give each an even share of the 16384 slots, MEET them, wait for ok."""
        try:
            for server in self.servers:
                server.start()
            share = _CLUSTER_SLOTS // len(self.servers)
            for index, server in enumerate(self.servers):
                first = index * share
                last = _CLUSTER_SLOTS - 1 if index == len(self.servers) - 1 else first + share - 1
                self._expect_ok(server, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last))
            for server in self.servers[1:]:
                self._expect_ok(self.servers[0], "CLUSTER", "MEET", server.host, str(server.port))
            self._wait_ok()
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _expect_ok(server: RedisServer, *args: str) -> None:
        reply = server.command(*args)
        if reply != b"+OK":
            raise RedisServerError(f"{' '.join(args)} on port {server.port}: {reply!r}")

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            states = [_cluster_state(server) for server in self.servers]
            if all(state == "ok" for state in states):
                return
            if time.monotonic() >= deadline:
                raise RedisServerError(f"cluster not ok within {self.startup_timeout} s: {states}")
            time.sleep(0.02)  # polling while the nodes agree on slots, bounded by the deadline

    def close(self) -> None:
        """Kill every node and remove their temp dirs."""
        for server in self.servers:
            server.close()

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cluster_state(server: RedisServer) -> str:
    """cluster_state from CLUSTER INFO (a bulk reply: read it whole with the tiny client)."""
    try:
        data = send_command(server.host, server.port, ("CLUSTER", "INFO"), timeout=2.0,
                            complete=lambda reply: b"cluster_state:" in reply and reply.endswith(b"\r\n"))
    except OSError:
        return "unreachable"
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return "unknown"
