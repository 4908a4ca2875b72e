"""LoopbackDNSServer: an authoritative DNS server on 127.0.0.1 that a test (or a benchmark) controls.

It answers every record type (A, AAAA, CNAME, MX, TXT, SOA, SRV, CAA, HTTPS, types by number) and
negative queries (NXDOMAIN, NODATA with an SOA in the authority section) over UDP and TCP, honours
EDNS(0) (UDP answers up to the client's advertised payload, else 512 bytes, then truncation),
and can be told to fail: SERVFAIL, REFUSED, drop (no answer, so the client times out), truncate
(TC bit over UDP, full answer over TCP) and delay. Each query is counted per (name, type),
thread-safely, so tests can assert how many queries a resolver really sent.

One thread serves every UDP packet and accepts TCP connections; answers are assembled from the
query's own question bytes plus a precomputed tail, so it serves tens of thousands of queries a
second. Names under a wildcard ("*.bench.test") answer any fresh name, which is what benchmarks need.
The records and the answers they make live in dns_zone.py; this module is the wire and the sockets.

    with LoopbackDNSServer({"example.test": ["192.0.2.1", "2001:db8::1"]}) as server:
        server.add_cname("www.example.test", "example.test", ttl=30)
        resolver = DNSCache(config, nameservers=[server.address])
"""

from __future__ import annotations

import heapq
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping

from scancache.testing.dns_zone import RDTYPES, DNSZone, record_type, wire_name

__all__ = ["LoopbackDNSServer", "RDTYPES"]

_MODES = ("servfail", "refuse", "drop", "truncate")
_MAX_UDP = 512  # without EDNS: the classic limit, larger answers are truncated
_MAX_EDNS = 4096  # the largest UDP answer sent whatever payload a client advertises
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # QDCOUNT 1, no other sections
#: The OPT record of an EDNS(0) answer: root owner, type 41, our payload 1232, no flags, no options.
_OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


class LoopbackDNSServer(DNSZone):
    """A controllable authoritative DNS server on a free 127.0.0.1 port (UDP and TCP).

    records maps names to an address or a list of addresses (IPv4 -> A, IPv6 -> AAAA) with the
    default ttl; use add/set_records/add_cname for more. Names not known answer NXDOMAIN, known
    names without the asked type answer NODATA; both carry an SOA whose MINIMUM is soa_minimum.
    Use it as a context manager (or start()/stop()); it stops by itself when the block ends and
    its threads are daemons, so a crashed test never hangs the process.
    """

    def __init__(self, records: Mapping[str, str | Iterable[str]] | None = None, *, ttl: int = 300,
                 soa_minimum: int = 60, soa_ttl: int = 3600, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(records, ttl=ttl, soa_minimum=soa_minimum, soa_ttl=soa_ttl)
        self._bind = (host, port)
        self._modes: dict[bytes | tuple[bytes, int] | None, str] = {}
        self._delays: dict[bytes | None, float] = {}
        self._counts: dict[tuple[bytes, int], int] = {}
        self.total_queries = 0
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake: tuple[socket.socket, socket.socket] | None = None  # stop() interrupts select

    # ------------------------------------------------------------------ lifecycle
    @property
    def host(self) -> str:
        """The IP address the server listens on."""
        return self._bind[0]

    @property
    def port(self) -> int:
        """The UDP (and TCP) port; known once started."""
        return self._bind[1]

    @property
    def address(self) -> str:
        """"ip:port", the form DNSCache(nameservers=[...]) and SCANCACHE_DNS_NAMESERVERS take."""
        return f"{self.host}:{self.port}"

    def start(self) -> LoopbackDNSServer:
        """Bind UDP and TCP on one free port and start serving; returns self."""
        for _ in range(20):  # the free UDP port may be taken for TCP: try another
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            udp.bind(self._bind)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((self._bind[0], udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                if self._bind[1]:
                    raise
                continue
            break
        else:
            raise OSError("no free port for UDP and TCP")
        tcp.listen(16)
        self._wake = socket.socketpair()
        self._stopping = False
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp = udp, tcp
        self._bind = (self._bind[0], udp.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name=f"dns-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets; idempotent."""
        self._stopping = True
        if self._wake is not None:
            try:
                self._wake[1].send(b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for sock in (self._udp, self._tcp, *(self._wake or ())):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = self._wake = None

    def __enter__(self) -> LoopbackDNSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ failure modes
    def _set_mode(self, mode: str | None, name: str | None, rdtype: str | int | None = None) -> None:
        key: bytes | tuple[bytes, int] | None = None
        if name is not None:
            key = wire_name(name) if rdtype is None else (wire_name(name), record_type(rdtype))
        with self._lock:
            if mode is None:
                self._modes.pop(key, None)
            else:
                self._modes[key] = mode

    def servfail(self, name: str | None = None, rdtype: str | int | None = None) -> None:
        """Answer SERVFAIL for name (None: every name), only for rdtype if given."""
        self._set_mode("servfail", name, rdtype)

    def refuse(self, name: str | None = None, rdtype: str | int | None = None) -> None:
        """Answer REFUSED for name (None: every name), only for rdtype if given."""
        self._set_mode("refuse", name, rdtype)

    def drop(self, name: str | None = None, rdtype: str | int | None = None) -> None:
        """Never answer name (None: every name), only for rdtype if given, so clients time out."""
        self._set_mode("drop", name, rdtype)

    def truncate(self, name: str | None = None, rdtype: str | int | None = None) -> None:
        """Answer name over UDP with the TC bit and no records; the full answer comes over TCP."""
        self._set_mode("truncate", name, rdtype)

    def delay(self, seconds: float, name: str | None = None) -> None:
        """Hold answers for name (None: every name) this long before sending; 0 removes the delay."""
        key = None if name is None else wire_name(name)
        with self._lock:
            if seconds > 0:
                self._delays[key] = seconds
            else:
                self._delays.pop(key, None)

    def heal(self, name: str | None = None) -> None:
        """Remove the failure mode and delay of name (None: remove every failure and delay)."""
        with self._lock:
            if name is None:
                self._modes.clear()
                self._delays.clear()
            else:
                key = wire_name(name)
                for mode_key in [k for k in self._modes
                                 if k == key or (isinstance(k, tuple) and k[0] == key)]:
                    del self._modes[mode_key]
                self._delays.pop(key, None)

    # ------------------------------------------------------------------ counters
    def query_count(self, name: str, rdtype: str | int | None = None) -> int:
        """Queries received for name (any case) and rdtype (None: all types), UDP and TCP."""
        key = wire_name(name)
        with self._lock:
            if rdtype is not None:
                return self._counts.get((key, record_type(rdtype)), 0)
            return sum(n for (k, _), n in self._counts.items() if k == key)

    def reset_counts(self) -> None:
        """Forget every query count."""
        with self._lock:
            self._counts.clear()
            self.total_queries = 0

    # ------------------------------------------------------------------ answering
    def answer(self, query: bytes, *, tcp: bool = False) -> bytes | None:
        """The response to one query message (None: drop it). Public so tests can call it directly."""
        if len(query) < 17 or query[2] & 0x80:
            return None  # too short to hold a question, or a response rather than a query
        pos = 12
        try:
            while query[pos]:
                if query[pos] > 63:
                    return query[:2] + b"\x80\x01" + bytes(8)  # FORMERR: compressed question
                pos += query[pos] + 1
            qtype = (query[pos + 1] << 8) | query[pos + 2]
        except IndexError:
            return query[:2] + b"\x80\x01" + bytes(8)
        if query[4:6] != b"\x00\x01":
            return query[:2] + b"\x80\x01" + bytes(8)
        name = query[12:pos + 1].lower()
        question = query[12:pos + 5]
        limit = _MAX_UDP
        edns = query[10:12] != b"\x00\x00" and query[pos + 5:pos + 8] == b"\x00\x00\x29"
        if edns:  # an OPT record follows the question: its CLASS is the client's UDP payload size
            limit = min(max((query[pos + 8] << 8) | query[pos + 9], _MAX_UDP), _MAX_EDNS)
        key = (name, qtype)
        counts = self._counts
        with self._lock:
            counts[key] = counts.get(key, 0) + 1
            self.total_queries += 1
        flags = 0x84 | (query[2] & 0x01)  # QR, AA, RD copied from the query
        modes = self._modes
        if modes:
            mode = modes.get(key) or modes.get(name) or modes.get(None)
            if mode == "drop":
                return None
            if mode == "servfail":
                return query[:2] + bytes((flags, 0x82)) + _ONE_QUESTION + question
            if mode == "refuse":
                return query[:2] + bytes((flags & ~0x04, 0x85)) + _ONE_QUESTION + question
            if mode == "truncate" and not tcp:
                return query[:2] + bytes((flags | 0x02, 0x80)) + _ONE_QUESTION + question
        tail = self._tails.get(key) or self._lookup(name, qtype)
        rcode, section_counts, body = tail
        if edns:
            section_counts = section_counts[:6] + b"\x00\x01"
            body += _OPT
        if not tcp and len(body) + len(question) > limit - 12:
            return query[:2] + bytes((flags | 0x02, 0x80)) + _ONE_QUESTION + question
        return query[:2] + bytes((flags, 0x80 | rcode)) + section_counts + question + body

    # ------------------------------------------------------------------ serving
    def _serve(self) -> None:
        udp, tcp, wake = self._udp, self._tcp, self._wake
        assert udp is not None and tcp is not None and wake is not None
        delayed: list[tuple[float, int, bytes, tuple[str, int]]] = []
        seq = 0
        while not self._stopping:
            timeout = max(0.0, delayed[0][0] - time.monotonic()) if delayed else None
            readable, _, _ = select.select([udp, tcp, wake[0]], [], [], timeout)
            while delayed and delayed[0][0] <= time.monotonic():
                _, _, data, peer = heapq.heappop(delayed)
                self._send(udp, data, peer)
            if tcp in readable:
                self._accept(tcp)
            if udp not in readable:
                continue
            for _ in range(4096):  # read dry, but let TCP and stop requests in now and then
                try:
                    query, peer = udp.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                response = self.answer(query)
                if response is None:
                    continue
                wait = self._delay_for(query) if self._delays else 0.0
                if wait:
                    seq += 1
                    heapq.heappush(delayed, (time.monotonic() + wait, seq, response, peer))
                else:
                    self._send(udp, response, peer)

    @staticmethod
    def _send(udp: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        try:
            udp.sendto(data, peer)
        except OSError:
            pass  # client gone or buffer full: it will retry

    def _delay_for(self, query: bytes) -> float:
        pos = 12
        while pos < len(query) and query[pos]:
            pos += query[pos] + 1
        if pos >= len(query):
            return 0.0  # a malformed query: answer() decides what to do with it
        name = query[12:pos + 1].lower()
        return self._delays.get(name) or self._delays.get(None) or 0.0

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()

    def _serve_tcp(self, conn: socket.socket) -> None:
        with conn:
            conn.setblocking(True)
            conn.settimeout(5)
            try:
                while not self._stopping:
                    size = self._recv_exact(conn, 2)
                    if size is None:
                        return
                    query = self._recv_exact(conn, struct.unpack("!H", size)[0])
                    if query is None:
                        return
                    wait = self._delay_for(query) if self._delays else 0.0
                    response = self.answer(query, tcp=True)
                    if response is None:
                        continue
                    if wait:
                        time.sleep(wait)  # own thread: holding this one connection is the point
                    conn.sendall(struct.pack("!H", len(response)) + response)
            except OSError:
                return

    @staticmethod
    def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def __repr__(self) -> str:
        return f"<LoopbackDNSServer {self.address} queries={self.total_queries}>"


def main(argv: list[str] | None = None) -> None:
    """Serve from the command line until stdin closes or Ctrl-C (benchmarks run it in a process).

    python -m scancache.testing.dns_server --record "*.bench.test=192.0.2.1" [--port 5353]
        --record "*.mx.bench.test/MX=10 mail.bench.test."   (NAME/TYPE=VALUE: any record type)
    prints "127.0.0.1:PORT" on the first line of stdout once it is serving.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Loopback DNS server for tests and benchmarks.")
    parser.add_argument("--record", action="append", default=[], metavar="NAME[/TYPE]=VALUE")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttl", type=int, default=300)
    args = parser.parse_args(argv)
    records: dict[str, list[str]] = {}
    typed: list[tuple[str, str, str]] = []
    for item in args.record:
        name, _, value = item.partition("=")
        name, _, rdtype = name.partition("/")
        if rdtype:
            typed.append((name, rdtype, value))
        else:
            records.setdefault(name, []).append(value)
    with LoopbackDNSServer(records, ttl=args.ttl, port=args.port) as server:
        for name, rdtype, value in typed:
            if rdtype.upper() == "CNAME":
                server.add_cname(name, value)
            else:
                server.add(name, rdtype, value)
        print(server.address, flush=True)
        try:
            sys.stdin.read()  # the parent closes our stdin (or dies) to stop us
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
