"""A throwaway redis-server on 127.0.0.1 for tests: start, stop, restart, pause, always killed.

Use it to test a scanner's Redis cache without a shared server:

    with RedisServer() as server:
        cache = Cache(CacheConfig(cache_type="redis", redis_url=server.url))
        ...
        server.stop()    # Redis outage
        server.start()   # back on the same port
        server.pause()   # hung server (SIGSTOP): clients hit their timeouts
        server.resume()

The server keeps nothing on disk (`--save "" --appendonly no`, a private temp dir) and talks to
nothing but loopback. This module needs only the redis-server binary, not the redis-py client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RedisClusterServer", "RedisServer", "RedisServerError", "find_redis_server", "free_cluster_port",
           "free_port"]

_PR_SET_PDEATHSIG = 1
_CLUSTER_SLOTS = 16384


class RedisServerError(RuntimeError):
    """redis-server is missing, exited early, or did not answer PING before the deadline."""


def find_redis_server() -> str | None:
    """Path of the redis-server binary on PATH (or /usr/bin, /usr/local/bin), else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; another process could take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel SIGKILL the server if the test process dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL works on a stopped process too, so this never hangs."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


class RedisServer:
    """One redis-server process on 127.0.0.1 and a free port, started by start() or `with`.

    url, port and host stay the same across stop()/start(), so clients built from url reconnect
    after a simulated outage. The process is killed on exit from `with`, on stop(), when the object
    is garbage collected, at interpreter exit and (Linux, when started from the main thread) when
    the test process itself dies. Raises RedisServerError if the binary is missing or the server
    does not answer PING within startup_timeout seconds.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.binary = binary or find_redis_server()
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.paused = False
        self._tempdir = tempfile.TemporaryDirectory(prefix="scancache-redis-")
        self.directory = Path(self._tempdir.name)
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """redis://host:port/0 for this server."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        """True while the process exists (paused counts as running)."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        """The server's log file (useful when start() fails)."""
        return self.directory / "redis.log"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RedisServer:
        """Start (or restart, on the same port) and wait until PING answers; no-op if running.

        Cost: usually 10-50 ms. Raises RedisServerError on a missing binary, an early exit or no
        PONG within startup_timeout.
        """
        if self.running:
            return self
        if self.binary is None:
            raise RedisServerError("redis-server binary not found on PATH")
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            *self.extra_args,
        ]
        # PDEATHSIG fires when the *thread* that forked exits, so only use it from the main thread.
        in_main_thread = threading.current_thread() is threading.main_thread()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if in_main_thread and os.name == "posix" else None,
        )
        self._process = process
        self.paused = False
        self._finalizer = weakref.finalize(self, _kill, process)  # also runs at interpreter exit
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.002
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with code {self._process.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError):
                if self.ping(timeout=0.5):
                    return
            if time.monotonic() >= deadline:
                raise RedisServerError(
                    f"redis-server on port {self.port} did not answer PING within "
                    f"{self.startup_timeout} s: {self._log_tail()}")
            time.sleep(delay)  # polling backoff while the process boots, bounded by the deadline
            delay = min(delay * 2, 0.05)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip() or "(empty log)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Kill the process (SIGKILL, so even a paused server goes at once); no-op if not running."""
        process, self._process = self._process, None
        if process is not None:
            _kill(process)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self.paused = False

    def restart(self) -> RedisServer:
        """stop() then start() on the same port (an empty server: nothing is persisted)."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open but nothing answers (a hung Redis)."""
        if not self.running:
            raise RedisServerError("cannot pause: redis-server is not running")
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGCONT)
        self.paused = False

    def close(self) -> None:
        """stop() and remove the temp dir; the object cannot be started again."""
        self.stop()
        self._tempdir.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.running else "stopped"
        return f"<RedisServer {self.url} {state}>"

    # ------------------------------------------------------------------ tiny RESP client
    def command(self, *args: str | bytes, timeout: float = 2.0) -> bytes:
        """Send one command and return the raw first reply line (b"+OK", b":3", ...).

        For test plumbing (PING, FLUSHALL) without redis-py; raises OSError if nothing answers.
        """
        parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.split(b"\r\n", 1)[0]

    def ping(self, timeout: float = 2.0) -> bool:
        """True if the server answers PING within timeout seconds."""
        try:
            return self.command("PING", timeout=timeout) == b"+PONG"
        except OSError:
            return False

    def flushall(self) -> None:
        """Delete every key in every database (between tests). Raises OSError if unreachable."""
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RedisServerError(f"FLUSHALL failed: {reply!r}")


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
        with socket.create_connection((server.host, server.port), timeout=2.0) as sock:
            sock.sendall(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")
            data = b""
            while b"cluster_state:" not in data or not data.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return "unreachable"
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return "unknown"
