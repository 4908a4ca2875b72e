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
RedisClusterServer (three nodes joined into a Redis Cluster) lives in redis_cluster.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

from scancache.cache.urls import redact_url

__all__ = ["RedisServer", "RedisServerError", "find_redis_server", "free_port", "send_command"]

_PR_SET_PDEATHSIG = 1


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


def send_command(host: str, port: int, args: Sequence[str | bytes], *, timeout: float,
                 complete: Callable[[bytes], bool], password: str | None = None) -> bytes:
    """Send one RESP command (after AUTH password, when given) and read until complete(reply so
    far) or the server hangs up.

    The tiny client behind RedisServer.command and the cluster's health checks; raises OSError if
    nothing answers within timeout seconds.
    """
    payload = _encode(args)
    # With a password, AUTH goes first on the same connection; its one-line answer is not the reply.
    auth_line = b""
    if password is not None:
        payload = _encode(("AUTH", password)) + payload
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        reply = b""
        while (password is not None and not auth_line) or not complete(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
            if password is not None and not auth_line and b"\r\n" in reply:
                auth_line, reply = reply.split(b"\r\n", 1)
                if auth_line != b"+OK":
                    return auth_line  # the AUTH error is the answer (e.g. -WRONGPASS)
    return reply


def _encode(args: Sequence[str | bytes]) -> bytes:
    """One command in RESP."""
    parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _requirepass(args: Sequence[str]) -> str | None:
    """The value of --requirepass in redis-server arguments, else None."""
    for flag, value in itertools.pairwise(args):
        if flag == "--requirepass":
            return value
    return None


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
        #: The server's password when extra_args hold --requirepass (url and command() use it).
        self.password = _requirepass(self.extra_args)
        self.startup_timeout = startup_timeout
        self.paused = False
        self._tempdir = tempfile.TemporaryDirectory(prefix="scancache-redis-")
        self.directory = Path(self._tempdir.name)
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """redis://host:port/0 for this server (redis://:password@host:port/0 with --requirepass)."""
        auth = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

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
        return f"<RedisServer {redact_url(self.url)} {state}>"

    # ------------------------------------------------------------------ tiny RESP client
    def command(self, *args: str | bytes, timeout: float = 2.0) -> bytes:
        """Send one command and return the raw first reply line (b"+OK", b":3", ...).

        For test plumbing (PING, FLUSHALL) without redis-py; raises OSError if nothing answers.
        """
        reply = send_command(self.host, self.port, args, timeout=timeout, password=self.password,
                             complete=lambda data: data.endswith(b"\r\n"))
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
