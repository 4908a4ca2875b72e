"""Invalidation across workers: Redis server-assisted client-side caching for the hybrid memory tier.

A hybrid cache over Redis keeps hot entries in process memory. Without help, a worker serves its copy
until the entry's TTL even after another worker overwrote or deleted it. Here one dedicated RESP3
connection per Redis node (per primary on a cluster) runs `CLIENT TRACKING on BCAST PREFIX
scancache:{namespace}:`, and a daemon thread reads the `invalidate` pushes Redis sends for every write,
delete or expiry of a key under that prefix, by any client, and evicts the key from the memory tier.
The thread serves the sync and async APIs alike (redis-py's asyncio client has no client-side caching).

Rules that keep the memory tier from serving what Redis no longer holds:
- Until tracking is on (at start, and after any reconnect), invalidations may have been missed: the
  memory tier is flushed the moment tracking is (re)established. While the connection is down the
  tier falls back to TTL-bounded staleness, as without tracking, and a reconnect is tried every
  RECONNECT_SECONDS. It is not flushed at the drop itself: when Redis is down, the memory tier is the
  only thing still answering (and no worker can write to Redis meanwhile); when only the listener's
  connection broke, the reconnect a quarter second later flushes it.
- A read that fetched from Redis fills memory only if no invalidation of that key (or flush) arrived
  since the read started (`TrackedHybridBackend`): otherwise a value read just before another
  worker's write could land in memory after that write's invalidation and stay there. Evictions and
  flushes go through the hybrid's fill barrier (cache/hybrid.py), so one that arrives between that
  check and the fill still bars it.
- A silent connection (a hung server or network) is detected by a PING every PING_SECONDS that must
  be answered within DEAD_SECONDS.

Our own writes come back as invalidations too (Redis reports writes by every connection but the
listener's). Each SET this process sends registers one expected invalidation of its key; the first
invalidation of that key to arrive consumes it instead of evicting. In BCAST mode every SET yields one
message, so whichever order our write and another worker's reach Redis in, the last message left to
act evicts exactly when the memory copy may differ from Redis. Expectations expire after
EXPECT_SECONDS and are dropped when tracking restarts (messages lost meanwhile never come).
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from scancache._log import get_logger
from scancache.cache.hybrid import HybridBackend
from scancache.cache.memory import MemoryBackend

if TYPE_CHECKING:
    from scancache.cache.redis import RedisBackend

__all__ = ["InvalidationListener", "TrackedHybridBackend", "tracked_hybrid"]

log = get_logger("scancache.cache")

PING_SECONDS = 1.0
DEAD_SECONDS = 3.0
RECONNECT_SECONDS = 0.25
EXPECT_SECONDS = 10.0
_RECENT_KEYS = 65536  # invalidated keys remembered for reads in flight; older ones: a conservative flush
_CONNECTION_NAME = "scancache-invalidation"


class _Incomplete(Exception):
    """The buffer holds only part of a RESP3 frame."""


class ProtocolError(Exception):
    """Redis sent something that is not RESP3, or an error reply to our setup."""


def _line(buf: bytes | bytearray, pos: int) -> tuple[bytes, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    return bytes(buf[pos:end]), end + 2


def parse_frame(buf: bytes | bytearray, pos: int = 0) -> tuple[Any, int]:
    """(value, position after it) of the RESP3 frame at pos; _Incomplete if more bytes are needed.

    Pushes come back as ("push", [items]), errors as ProtocolError instances (not raised)."""
    if pos >= len(buf):
        raise _Incomplete
    kind = buf[pos:pos + 1]
    head, pos = _line(buf, pos + 1)
    if kind in (b"+", b"(", b","):
        return head.decode("utf-8", "replace"), pos
    if kind == b"-":
        return ProtocolError(head.decode("utf-8", "replace")), pos
    if kind == b":":
        return int(head), pos
    if kind == b"_":
        return None, pos
    if kind == b"#":
        return head == b"t", pos
    if kind in (b"$", b"=", b"!"):
        size = int(head)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        data = bytes(buf[pos:pos + size])
        return (ProtocolError(data.decode("utf-8", "replace")) if kind == b"!" else data), pos + size + 2
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(head)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count * (2 if kind in (b"%", b"|") else 1)):
            item, pos = parse_frame(buf, pos)
            items.append(item)
        if kind == b"|":  # attributes precede the real reply: skip them
            return parse_frame(buf, pos)
        return (("push", items) if kind == b">" else items), pos
    raise ProtocolError(f"unexpected RESP3 type byte {kind!r}")


def encode_command(*args: str | bytes) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Node:
    """Where to connect: host, port, TLS, credentials (from the cache's redis_url)."""

    def __init__(self, host: str, port: int, tls: bool, username: str | None, password: str | None
                 ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password = username, password


def nodes_for(url: str, timeout: float) -> list[_Node]:
    """The nodes to track: the server of a plain URL; every primary of a cluster (asked once)."""
    from scancache.cache.redis_clients import parse_redis_url

    client_url, cluster = parse_redis_url(url)
    parts = urlsplit(client_url)
    tls = parts.scheme == "rediss"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if not cluster:
        return [_Node(parts.hostname or "127.0.0.1", parts.port or 6379, tls, username, password)]
    from scancache.cache.redis_clients import connect_sync

    client = connect_sync(url, timeout_seconds=timeout)
    try:
        return [_Node(node.host, node.port, tls, username, password) for node in client.get_primaries()]
    finally:
        client.close()


class InvalidationListener:
    """Tracks keys under prefix on every node of url and calls evict(keys) / flush() as Redis reports
    changes. `seq` grows with every invalidation; `changed_since(key, seq)` tells a read in flight
    whether what it fetched may already be outdated. Thread-safe; close() stops it."""

    def __init__(self, url: str, prefix: str, evict: Callable[[Iterable[str]], None],
                 flush: Callable[[], None], *, timeout_seconds: float = 0.5) -> None:
        self.url = url
        self.prefix = prefix
        self._prefix_bytes = prefix.encode()
        self._evict = evict
        self._flush = flush
        self.timeout_seconds = timeout_seconds
        self.seq = 0  # bumped (under the GIL, one writer per node thread) for each invalidation
        self._flushed_at = 0  # seq of the last flush; reads older than it may not fill memory
        self._recent: OrderedDict[str, int] = OrderedDict()  # key -> seq of its last invalidation
        self._expected: dict[str, list[float]] = {}  # key -> deadlines of our own SETs' messages
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._tracking: dict[int, bool] = {}  # node index -> tracking on
        self.connected = threading.Event()  # set while every node is tracked
        self.invalidations = 0
        self.flushes = 0
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ what readers ask
    @property
    def healthy(self) -> bool:
        """True while every node's tracking connection is up."""
        return self.connected.is_set()

    def mark(self) -> int:
        """A point in the invalidation stream, taken before a read from Redis."""
        return self.seq

    def changed_since(self, key: str, mark: int) -> bool:
        """True if key (or everything) was invalidated after mark."""
        if self._flushed_at > mark:
            return True
        seen = self._recent.get(key)
        return seen is not None and seen > mark

    def expect(self, keys: Iterable[str]) -> list[str]:
        """Register one coming invalidation per key (our own SETs); returns what unexpect() takes."""
        if not self.connected.is_set():
            return []  # no message will come for a write made while we do not listen
        keys = list(keys)
        deadline = time.monotonic() + EXPECT_SECONDS
        with self._lock:
            for key in keys:
                self._expected.setdefault(key, []).append(deadline)
        return keys

    def unexpect(self, keys: Iterable[str]) -> None:
        """Withdraw expectations of writes that failed (their messages may never come)."""
        with self._lock:
            for key in keys:
                deadlines = self._expected.get(key)
                if deadlines:
                    deadlines.pop()
                    if not deadlines:
                        del self._expected[key]

    def _consume(self, key: str, now: float) -> bool:
        """True if this invalidation of key is the echo of our own write (called under _lock)."""
        deadlines = self._expected.get(key)
        if not deadlines:
            return False
        while deadlines and deadlines[0] < now:
            deadlines.pop(0)
        if not deadlines:
            del self._expected[key]
            return False
        deadlines.pop(0)
        if not deadlines:
            del self._expected[key]
        return True

    def barrier(self) -> None:
        """Reads from Redis in flight now must not fill memory (invalidate(prefix=...) uses it)."""
        with self._lock:
            self.seq += 1
            self._flushed_at = self.seq

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> InvalidationListener:
        """Start one daemon thread per node (discovered in the first thread: never blocks the caller)."""
        thread = threading.Thread(target=self._run_all, name="scancache-invalidation", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def close(self) -> None:
        """Stop the threads and close the connections (the memory tier is left as it is)."""
        self._stop.set()
        self.connected.clear()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _run_all(self) -> None:
        nodes: list[_Node] = []
        while not self._stop.is_set() and not nodes:
            try:
                nodes = nodes_for(self.url, self.timeout_seconds)
            except Exception as exc:
                log.debug("invalidation: node discovery failed: %s", exc)
                self._stop.wait(RECONNECT_SECONDS)
        self._tracking = dict.fromkeys(range(len(nodes)), False)
        for index, node in enumerate(nodes[1:], start=1):
            thread = threading.Thread(target=self._run_node, args=(index, node), daemon=True,
                                      name=f"scancache-invalidation-{index}")
            self._threads.append(thread)
            thread.start()
        if nodes:
            self._run_node(0, nodes[0])

    # ------------------------------------------------------------------ one node
    def _run_node(self, index: int, node: _Node) -> None:
        down_logged = False
        while not self._stop.is_set():
            try:
                self._serve(index, node)
            except Exception as exc:
                if not self._stop.is_set() and not down_logged:
                    log.warning("invalidation connection to %s:%d lost (%s: %s); the memory tier is "
                                "flushed and serves entries only until their TTL until it is back",
                                node.host, node.port, type(exc).__name__, exc)
                    down_logged = True
            self._set_tracking(index, False)
            # No flush here: if Redis itself is down, memory is all that still answers (and nobody
            # can write to Redis meanwhile); the flush comes when tracking is back (see _serve).
            self._stop.wait(RECONNECT_SECONDS)

    def _connect(self, node: _Node) -> socket.socket:
        sock = socket.create_connection((node.host, node.port), timeout=self.timeout_seconds)
        if node.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=node.host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stop.is_set():
                sock.close()
                raise ConnectionError("closed")
            self._sockets.add(sock)
        return sock

    def _serve(self, index: int, node: _Node) -> None:
        sock = self._connect(node)
        try:
            hello: list[str | bytes] = ["HELLO", "3"]
            if node.password is not None:
                hello += ["AUTH", node.username or "default", node.password]
            hello += ["SETNAME", _CONNECTION_NAME]
            buf = bytearray()
            sock.sendall(encode_command(*hello))
            reply, buf = self._reply(sock, buf)
            if isinstance(reply, ProtocolError):
                raise ProtocolError(f"HELLO 3 refused: {reply}")
            sock.sendall(encode_command("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", self.prefix))
            reply, buf = self._reply(sock, buf)
            if isinstance(reply, ProtocolError):
                raise ProtocolError(f"CLIENT TRACKING refused: {reply}")
            self._do_flush()  # anything filled before tracking was on may be outdated
            self._set_tracking(index, True)
            self._listen(sock, buf)
        finally:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _reply(self, sock: socket.socket, buf: bytearray) -> tuple[Any, bytearray]:
        """The next non-push reply (pushes met meanwhile are handled)."""
        deadline = time.monotonic() + max(self.timeout_seconds, 1.0) * 4
        while True:
            try:
                value, pos = parse_frame(buf)
            except _Incomplete:
                if time.monotonic() > deadline:
                    raise TimeoutError("no reply from Redis") from None
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by Redis")
                buf += chunk
                continue
            del buf[:pos]
            if isinstance(value, tuple) and value[0] == "push":
                self._push(value[1])
                continue
            return value, buf

    def _listen(self, sock: socket.socket, buf: bytearray) -> None:
        sock.settimeout(PING_SECONDS)
        last_heard = time.monotonic()
        while not self._stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if time.monotonic() - last_heard > DEAD_SECONDS:
                    raise TimeoutError(f"no answer to PING for {DEAD_SECONDS:g} s") from None
                sock.sendall(encode_command("PING"))
                continue
            if not chunk:
                raise ConnectionError("closed by Redis")
            last_heard = time.monotonic()
            buf += chunk
            while True:
                try:
                    value, pos = parse_frame(buf)
                except _Incomplete:
                    break
                del buf[:pos]
                if isinstance(value, tuple) and value[0] == "push":
                    self._push(value[1])

    # ------------------------------------------------------------------ what Redis reports
    def _push(self, items: list[Any]) -> None:
        if not items or items[0] not in (b"invalidate", "invalidate"):
            return
        keys = items[1] if len(items) > 1 else None
        if keys is None:  # FLUSHALL / FLUSHDB: every key may be gone
            self._do_flush()
            return
        prefix, plen = self._prefix_bytes, len(self._prefix_bytes)
        names = [k[plen:].decode("utf-8", "surrogateescape") for k in keys
                 if isinstance(k, bytes) and k.startswith(prefix)]
        if not names:
            return
        now = time.monotonic()
        with self._lock:
            self.seq += 1
            seq = self.seq
            recent = self._recent
            for name in names:
                recent[name] = seq
                recent.move_to_end(name)
            while len(recent) > _RECENT_KEYS:
                recent.popitem(last=False)
                self._flushed_at = seq  # forgot an older key: reads from before now must not fill
            foreign = [name for name in names if not self._consume(name, now)]
        self.invalidations += len(foreign)
        if foreign:
            self._evict(foreign)

    def _do_flush(self) -> None:
        with self._lock:
            self.seq += 1
            self._flushed_at = self.seq
            self._recent.clear()
            self._expected.clear()
        self.flushes += 1
        self._flush()

    def _set_tracking(self, index: int, on: bool) -> None:
        with self._lock:
            self._tracking[index] = on
            everything = bool(self._tracking) and all(self._tracking.values())
        if everything and not self._stop.is_set():
            self.connected.set()
        else:
            self.connected.clear()


_MARK: contextvars.ContextVar[int | None] = contextvars.ContextVar("scancache_invalidation_mark",
                                                                  default=None)


class TrackedHybridBackend(HybridBackend):
    """A HybridBackend over Redis whose memory tier follows other workers' writes (see module doc).

    Reads from Redis take a mark first (in a ContextVar, so threads and tasks each keep their own),
    and a fill is skipped when the key was invalidated after it; everything else is HybridBackend's.
    """

    back: RedisBackend

    def __init__(self, front: MemoryBackend, back: Any, codec: Any, clock: Callable[[], float],
                 *, url: str, prefix: str, timeout_seconds: float) -> None:
        super().__init__(front, back, codec, clock)
        hybrid_ref = weakref.ref(self)  # weak: the listener must not keep this backend alive

        # Evictions go through the hybrid's fill barrier (epoch bump under its lock): a fill that
        # passed the listener's check just before the eviction arrived is then refused or removed.
        def evict(keys: Iterable[str]) -> None:
            hybrid = hybrid_ref()
            if hybrid is not None:
                for key in keys:
                    hybrid._forget(key)

        def flush() -> None:
            hybrid = hybrid_ref()
            if hybrid is not None:
                hybrid.forget_where(MemoryBackend.clear)

        self.listener = InvalidationListener(url, prefix, evict, flush, timeout_seconds=timeout_seconds)
        weakref.finalize(self, self.listener.close)
        self.listener.start()
        # Writes made before tracking is on are flushed when it comes on: wait for it (a live Redis
        # answers in a millisecond; a dead one costs timeout_seconds once, then we go on).
        self.listener.connected.wait(timeout_seconds)

    def _fill(self, key: str, record: Any, seen: int) -> None:
        mark = _MARK.get()
        if mark is None or self.listener.changed_since(key, mark):
            self.skipped_fills += 1  # outdated already, or tracking down: serve it, keep it out of memory
            return
        super()._fill(key, record, seen)  # and this process's own writes: HybridBackend's barrier

    def _marked(self, read: Callable[..., Any], *args: Any) -> Any:
        token = _MARK.set(self.listener.mark())
        try:
            return read(*args)
        finally:
            _MARK.reset(token)

    async def _amarked(self, read: Callable[..., Any], *args: Any) -> Any:
        token = _MARK.set(self.listener.mark())
        try:
            return await read(*args)
        finally:
            _MARK.reset(token)

    def get(self, key: str) -> Any:
        return self._marked(super().get, key)

    def get_many(self, keys: Any) -> Any:
        return self._marked(super().get_many, keys)

    async def aget(self, key: str) -> Any:
        return await self._amarked(super().aget, key)

    async def aget_many(self, keys: Any) -> Any:
        return await self._amarked(super().aget_many, keys)

    def _sets(self, items: Iterable[tuple[str, Any]]) -> list[str]:
        """Expect the echo of each item that the back will SET (not those it deletes as expired)."""
        expiry_ms = self.back._expiry_ms
        return self.listener.expect(key for key, record in items if expiry_ms(record))

    def set(self, key: str, record: Any, blob: bytes | None) -> None:
        expected = self._sets([(key, record)])
        try:
            super().set(key, record, blob)
        except BaseException:
            self.listener.unexpect(expected)
            raise

    def set_many(self, items: Any) -> None:
        expected = self._sets((item.key, item.record) for item in items)
        try:
            super().set_many(items)
        except BaseException:
            self.listener.unexpect(expected)
            raise

    async def aset(self, key: str, record: Any, blob: bytes | None) -> None:
        expected = self._sets([(key, record)])
        try:
            await super().aset(key, record, blob)
        except BaseException:
            self.listener.unexpect(expected)
            raise

    async def aset_many(self, items: Any) -> None:
        expected = self._sets((item.key, item.record) for item in items)
        try:
            await super().aset_many(items)
        except BaseException:
            self.listener.unexpect(expected)
            raise

    def close(self) -> None:
        self.listener.close()
        super().close()

    async def aclose(self) -> None:
        self.listener.close()
        await super().aclose()


def tracked_hybrid(front: MemoryBackend, back: Any, codec: Any, clock: Callable[[], float], config: Any
                   ) -> TrackedHybridBackend:
    """The hybrid backend of a config with redis_url: memory in front of Redis, kept in step."""
    return TrackedHybridBackend(front, back, codec, clock, url=config.redis_url, prefix=back.prefix,
                                timeout_seconds=config.redis_timeout_seconds)
