"""DNSClient: a lean asyncio stub resolver client over UDP (TCP when an answer is truncated).

Why it is shaped this way (measured, see the project notes): one non-blocking UDP socket per
nameserver, read dry on each wake-up through loop.add_reader; one Future per query and no Task per
lookup; one timer for all retransmissions (queues of deadlines); short first retry that grows; a
large SO_RCVBUF so bursts of answers are not dropped by the kernel. A random query id, a source port
picked by the OS, and answers matched on (id, question name case-insensitively, type) keep forged or
stray packets out. Retries rotate over the nameservers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections import deque
from typing import Any

from scancache.dns.wire import (
    AAAA,
    EDNS_OPT,
    FORMERR,
    NOERROR,
    NOTIMP,
    NXDOMAIN,
    RESPONSE_FLAG,
    TRUNCATED_FLAG,
    A,
    Answer,
    MalformedMessage,
    parse_answer,
    query_suffix,
)
from scancache.errors import DNSError

__all__ = ["DNSClient"]

_RCVBUF = 4 << 20
_ID_BATCH = 4096
_FINAL_RCODES = (NOERROR, NXDOMAIN)  # answers another nameserver would not change
_FAST_TYPES = (A, AAAA)


def _parse_records(data: bytes, qname: str, qtype: int, question_end: int) -> Answer:
    from scancache.dns.records import parse_records  # dnspython: only when a rare type is asked

    return parse_records(data, qname, qtype, question_end)


class _Query:
    """One query in flight: its future, question, attempt number and registered ids."""

    __slots__ = ("attempt", "edns", "fut", "ids", "name", "parse", "qid", "qtype", "question",
                 "question_end", "server", "suffix")

    def __init__(self, fut: asyncio.Future[Answer], name: str, qtype: int, suffix: bytes,
                 edns: bool = True) -> None:
        self.fut = fut
        self.name = name
        self.qtype = qtype
        # A and AAAA by hand (the hot path); every other type through dnspython.
        self.parse = parse_answer if qtype in _FAST_TYPES else _parse_records
        self.suffix = suffix  # header tail + question (+ OPT): the query without its id
        self.edns = edns
        question = suffix[10:len(suffix) - len(EDNS_OPT)] if edns else suffix[10:]
        self.question = question.lower()  # what the answer must echo (compared in lower case)
        self.question_end = 12 + len(question)
        self.attempt = 0
        self.server = 0
        self.qid = 0
        self.ids: list[tuple[dict[int, _Query], int]] = []


class _Server:
    """One nameserver: its address and its connected UDP socket."""

    __slots__ = ("address", "pending", "sock")

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock: socket.socket | None = None
        self.pending: dict[int, _Query] = {}


class DNSClient:
    """Send A/AAAA/... queries to nameservers and return parsed Answers; bound to one event loop.

    query() returns a Future resolving to an Answer (any rcode), or failing with DNSError(name,
    "timeout") after timeout_seconds spread over `attempts` sends (each waiting twice as long as
    the one before). The client opens its sockets on first use and reopens them if used from a new
    event loop. Counters: queries_sent, retries, timeouts, tcp_fallbacks, malformed.
    """

    def __init__(self, nameservers: list[tuple[str, int]], *, timeout_seconds: float = 2.0,
                 attempts: int = 3, edns: bool = True) -> None:
        if not nameservers:
            raise ValueError("DNSClient needs at least one nameserver")
        self.nameservers = list(nameservers)
        self.edns = edns  # advertise EDNS_PAYLOAD; a server that answers FORMERR is asked without
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        # Waits per attempt: t, 2t, 4t ... summing to timeout_seconds (short first retry).
        unit = timeout_seconds / (2 ** attempts - 1)
        self._waits = [unit * 2 ** i for i in range(attempts)]
        self._servers: list[_Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # One deque of (deadline, query, attempt) per attempt number: every attempt k waits the same
        # time, so each deque is already in deadline order (cheaper than a heap).
        self._deadlines: list[deque[tuple[float, _Query, int]]] = [deque() for _ in range(attempts)]
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._ids: Any = iter(())
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self.queries_sent = 0
        self.retries = 0
        self.timeouts = 0
        self.tcp_fallbacks = 0
        self.malformed = 0

    # ------------------------------------------------------------------ sockets
    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        self.close()
        self._loop = loop
        for address in self.nameservers:
            server = _Server(address)
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
                except OSError:
                    pass  # the kernel's cap applies; still correct, just more retries under load
                sock.connect(address)  # binds a random source port; the kernel drops other senders
                loop.add_reader(sock.fileno(), self._on_readable, server)
            except BaseException:
                sock.close()
                raise
            server.sock = sock
            self._servers.append(server)

    def close(self) -> None:
        """Close the sockets and fail queries still in flight; the client reopens on next use."""
        loop, servers = self._loop, self._servers
        self._servers = []
        self._loop = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for pending_deadlines in self._deadlines:
            pending_deadlines.clear()
        for task in list(self._tcp_tasks):
            task.cancel()
        for server in servers:
            if server.sock is None:
                continue
            if loop is not None and not loop.is_closed():
                try:
                    loop.remove_reader(server.sock.fileno())
                except (RuntimeError, ValueError):
                    pass
            server.sock.close()
            for query in server.pending.values():
                if not query.fut.done() and not query.fut.get_loop().is_closed():
                    query.fut.set_exception(DNSError(query.name, "resolver closed"))
                    query.fut.exception()  # retrieved: the caller may be gone
            server.pending.clear()

    def __del__(self) -> None:
        # A DNSCache that was never closed (the seed example) must not leak sockets or warnings:
        # once nothing, not even the event loop's reader, refers to us, close them quietly.
        for server in getattr(self, "_servers", ()):
            if server.sock is not None:
                server.sock.close()

    def _next_id(self, pending: dict[int, _Query]) -> int:
        while True:
            qid = next(self._ids, None)
            if qid is None:
                # Unpredictable ids from the OS, drawn in batches: one syscall per 4096 queries.
                self._ids = iter(memoryview(os.urandom(2 * _ID_BATCH)).cast("H"))
                continue
            if qid not in pending:
                return qid

    # ------------------------------------------------------------------ queries
    def query(self, name: str, qtype: int, wire_name: bytes) -> asyncio.Future[Answer]:
        """Send one query for a normalised name; the Future gets its Answer or DNSError."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._open(loop)
        edns = self.edns
        query = _Query(loop.create_future(), name, qtype, query_suffix(wire_name, qtype, edns=edns),
                       edns)
        self._send(query)
        return query.fut

    def _send(self, query: _Query) -> None:
        server = self._servers[query.server]
        pending = server.pending
        qid = next(self._ids, None)
        if qid is None or qid in pending:  # batch used up, or that id is still in flight
            qid = self._next_id(pending)
        query.qid = qid
        pending[qid] = query
        query.ids.append((pending, qid))
        try:
            server.sock.send(qid.to_bytes(2, "big") + query.suffix)  # type: ignore[union-attr]  # open
        except OSError:
            pass  # buffer full or ICMP error pending: the retry timer covers it
        self.queries_sent += 1
        attempt = query.attempt
        deadline = self._loop.time() + self._waits[attempt]  # type: ignore[union-attr]  # started
        self._deadlines[attempt].append((deadline, query, attempt))
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._sweep)

    def _sweep(self) -> None:
        """Retransmit or time out every query whose current attempt's deadline has passed."""
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        retry: list[_Query] = []
        for queue in self._deadlines:
            while queue:
                deadline, query, attempt = queue[0]
                if query.fut.done() or attempt != query.attempt:
                    queue.popleft()  # answered, or already retried: nothing to do
                    if query.fut.done():
                        self._forget(query)
                    continue
                if deadline > now:
                    break
                queue.popleft()
                retry.append(query)
        for query in retry:
            if query.attempt + 1 < self.attempts:
                query.attempt += 1
                query.server = (query.server + 1) % len(self._servers)
                self.retries += 1
                self._send(query)
            else:
                self._forget(query)
                self.timeouts += 1
                query.fut.set_exception(DNSError(query.name, "timeout"))
                query.fut.exception()
        heads = [queue[0][0] for queue in self._deadlines if queue]
        if heads:
            self._arm(min(heads))

    @staticmethod
    def _forget(query: _Query) -> None:
        for pending, qid in query.ids:
            if pending.get(qid) is query:
                del pending[qid]
        query.ids.clear()

    # ------------------------------------------------------------------ answers
    def _on_readable(self, server: _Server) -> None:
        sock, pending = server.sock, server.pending
        if sock is None:
            return
        recv = sock.recv
        while True:  # read dry: one wake-up may carry hundreds of answers
            try:
                data = recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionRefusedError:
                continue  # ICMP port unreachable from an earlier send: timers handle it
            except OSError:
                return
            if len(data) < 12:
                continue
            query = pending.get((data[0] << 8) | data[1])
            # A response (QR set) to a query still waiting, echoing our question (any case: 0x20).
            if (query is None or not data[2] & RESPONSE_FLAG or query.fut.done()
                    or data[12:query.question_end].lower() != query.question):
                continue
            if data[2] & TRUNCATED_FLAG:  # the whole answer did not fit: ask again over TCP
                self._forget(query)
                query.attempt = self.attempts  # UDP timers no longer apply: TCP has its own timeout
                self.tcp_fallbacks += 1
                task = asyncio.ensure_future(self._over_tcp(query, server.address))
                self._tcp_tasks.add(task)
                task.add_done_callback(self._tcp_tasks.discard)
                continue
            if query.edns and data[3] & 0x0F in (FORMERR, NOTIMP):
                # A server that does not know EDNS(0) (RFC 6891 6.2.2): ask it again without.
                self._forget(query)
                query.edns = False
                query.suffix = query.suffix[:9] + b"\x00" + query.suffix[10:-len(EDNS_OPT)]
                self.retries += 1
                self._send(query)
                continue
            try:
                answer = query.parse(data, query.name, query.qtype, query.question_end)
            except (MalformedMessage, IndexError, struct.error):
                self.malformed += 1
                continue  # keep waiting: a good answer or the timeout will come
            if answer.rcode not in _FINAL_RCODES and len(self._servers) > 1 \
                    and query.attempt + 1 < self.attempts:
                query.attempt += 1  # SERVFAIL/REFUSED: ask the next nameserver now
                query.server = (query.server + 1) % len(self._servers)
                self._send(query)
                continue
            self._forget(query)
            query.fut.set_result(answer)

    async def _over_tcp(self, query: _Query, address: tuple[str, int]) -> None:
        message = query.qid.to_bytes(2, "big") + query.suffix
        writer = None
        try:
            async with asyncio.timeout(self.timeout_seconds):
                reader, writer = await asyncio.open_connection(address[0], address[1])
                writer.write(len(message).to_bytes(2, "big") + message)
                size = int.from_bytes(await reader.readexactly(2), "big")
                data = await reader.readexactly(size)
            if data[:2] != message[:2] or data[12:query.question_end].lower() != query.question:
                raise MalformedMessage("answer does not match the question")
            answer = query.parse(data, query.name, query.qtype, query.question_end)
        except (TimeoutError, OSError, EOFError, MalformedMessage, IndexError, struct.error) as exc:
            if not query.fut.done():
                reason = "timeout" if isinstance(exc, TimeoutError) else f"tcp: {type(exc).__name__}"
                self.timeouts += isinstance(exc, TimeoutError)
                query.fut.set_exception(DNSError(query.name, reason))
                query.fut.exception()
            return
        except asyncio.CancelledError:  # close(): the caller must hear, not wait forever
            if not query.fut.done():
                query.fut.set_exception(DNSError(query.name, "resolver closed"))
                query.fut.exception()
            raise
        finally:
            if writer is not None:
                writer.close()
        if not query.fut.done():
            query.fut.set_result(answer)
