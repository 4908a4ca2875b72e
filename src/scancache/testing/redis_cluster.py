"""A throwaway Redis Cluster on 127.0.0.1 for tests: primaries (and replicas), slots spread, joined.

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
    """A throwaway Redis Cluster on 127.0.0.1: `nodes` primaries with the slots spread evenly, and
    `replicas` replicas of each (so a killed primary fails over to its replica).

    url is `redis+cluster://127.0.0.1:port` of the first node (the scheme scancache reads as "use
    RedisCluster"). start() assigns slots, joins the nodes and attaches the replicas itself (no
    redis-cli needed), then waits, bounded by startup_timeout, until every node reports
    cluster_state:ok and every replica is in sync with its primary. `node_timeout_ms` is how long a
    silent node takes to be declared failed (Redis's cluster-node-timeout). The nodes keep serving the
    slots they own while another primary is down (cluster-require-full-coverage no): a cluster that
    should stay partly available needs the same setting.

        with RedisClusterServer(3, replicas=1, node_timeout_ms=1000) as cluster:   # six nodes
            cluster.masters[0].stop()   # its replica takes over its slots after ~2 node timeouts
    """

    def __init__(self, nodes: int = 3, *, replicas: int = 0, node_timeout_ms: int = 5000,
                 startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms), "--cluster-require-full-coverage", "no"]
        self.masters = [RedisServer(port=free_cluster_port(), startup_timeout=startup_timeout,
                                    extra_args=args) for _ in range(nodes)]
        #: replicas_of[i] are the replicas of masters[i] (as started; a failover swaps the roles).
        self.replicas_of = [[RedisServer(port=free_cluster_port(), startup_timeout=startup_timeout,
                                         extra_args=args) for _ in range(replicas)] for _ in range(nodes)]
        self.servers = [*self.masters, *(r for group in self.replicas_of for r in group)]

    @property
    def url(self) -> str:
        """redis+cluster://host:port of the first node (any node bootstraps the client)."""
        first = self.servers[0]
        return f"redis+cluster://{first.host}:{first.port}"

    def slot_range(self, master: int) -> range:
        """The slots masters[master] was given at start()."""
        share = _CLUSTER_SLOTS // len(self.masters)
        first = master * share
        last = _CLUSTER_SLOTS - 1 if master == len(self.masters) - 1 else first + share - 1
        return range(first, last + 1)

    def start(self) -> RedisClusterServer:
        """Start every node, share the 16384 slots among the masters, MEET them all, attach the
        replicas, and wait until the cluster is ok and the replicas are in sync."""
        try:
            for server in self.servers:
                server.start()
            for index, server in enumerate(self.masters):
                slots = self.slot_range(index)
                self._expect_ok(server, "CLUSTER", "ADDSLOTSRANGE", str(slots[0]), str(slots[-1]))
            for server in self.servers[1:]:
                self._expect_ok(self.servers[0], "CLUSTER", "MEET", server.host, str(server.port))
            for master, replicas in zip(self.masters, self.replicas_of, strict=True):
                master_id = _node_id(master)
                for replica in replicas:
                    self._until_ok(replica, "CLUSTER", "REPLICATE", master_id)
            self._wait_ok()
            self.wait_replicas_in_sync()
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _expect_ok(server: RedisServer, *args: str) -> None:
        reply = server.command(*args)
        if reply != b"+OK":
            raise RedisServerError(f"{' '.join(args)} on port {server.port}: {reply!r}")

    def _until_ok(self, server: RedisServer, *args: str) -> None:
        """args on server, again while it fails (a replica learns of its master by gossip)."""
        deadline = time.monotonic() + self.startup_timeout
        while (reply := server.command(*args)) != b"+OK":
            if time.monotonic() >= deadline:
                raise RedisServerError(f"{' '.join(args)} on port {server.port}: {reply!r}")
            time.sleep(0.02)  # polling while gossip spreads, bounded by the deadline

    def _wait_ok(self) -> None:
        """Until every node says ok, knows every node and sees all 16384 slots assigned (with
        cluster-require-full-coverage no, "ok" alone can come before a node has heard of every
        slot, and such a node answers CLUSTERDOWN for the slots it has not heard of)."""
        deadline = time.monotonic() + self.startup_timeout
        agreed = ("ok", str(len(self.servers)), str(_CLUSTER_SLOTS))
        while True:
            states = [_cluster_info(server, ("cluster_state", "cluster_known_nodes",
                                             "cluster_slots_assigned")) for server in self.servers]
            if all(state == agreed for state in states):
                return
            if time.monotonic() >= deadline:
                raise RedisServerError(f"cluster not ok within {self.startup_timeout} s: {states}")
            time.sleep(0.02)  # polling while the nodes agree on slots, bounded by the deadline

    def wait_replicas_in_sync(self, timeout: float | None = None) -> None:
        """Wait until every replica's link is up and it holds as many keys as its master (after
        writes, before killing a master whose data the replica must carry on)."""
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        for master, replicas in zip(self.masters, self.replicas_of, strict=True):
            for replica in replicas:
                while not (_info_field(replica, "replication", "master_link_status") == "up"
                           and _dbsize(replica) == _dbsize(master)):
                    if time.monotonic() >= deadline:
                        raise RedisServerError(f"replica on port {replica.port} not in sync")
                    time.sleep(0.02)  # polling while it copies, bounded by the deadline

    def close(self) -> None:
        """Kill every node and remove their temp dirs."""
        for server in self.servers:
            server.close()

    def __enter__(self) -> RedisClusterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bulk(server: RedisServer, *args: str) -> str:
    """A bulk-string reply read whole with the tiny client ("" when unreachable)."""
    def complete(reply: bytes) -> bool:
        if not reply.startswith(b"$"):
            return reply.endswith(b"\r\n")
        head, _, rest = reply.partition(b"\r\n")
        return len(rest) >= int(head[1:]) + 2 if head[1:].lstrip(b"-").isdigit() else False

    try:
        data = send_command(server.host, server.port, args, timeout=2.0, complete=complete)
    except OSError:
        return ""
    return data.partition(b"\r\n")[2].decode(errors="replace") if data.startswith(b"$") else ""


def _node_id(server: RedisServer) -> str:
    node_id = _bulk(server, "CLUSTER", "MYID").strip()
    if not node_id:
        raise RedisServerError(f"CLUSTER MYID on port {server.port} gave no id")
    return node_id


def _info_field(server: RedisServer, section: str, name: str) -> str:
    for line in _bulk(server, "INFO", section).splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _dbsize(server: RedisServer) -> int:
    reply = server.command("DBSIZE")
    return int(reply[1:]) if reply.startswith(b":") else -1


def _cluster_info(server: RedisServer, names: tuple[str, ...]) -> tuple[str, ...]:
    """The named fields of CLUSTER INFO ("unreachable" for each when the node does not answer)."""
    fields = dict(line.split(":", 1) for line in _bulk(server, "CLUSTER", "INFO").splitlines()
                  if ":" in line)
    if not fields:
        return ("unreachable",) * len(names)
    return tuple(fields.get(name, "unknown").strip() for name in names)
