"""SystemUpstream: the operating system's resolver (getaddrinfo) when no nameserver is configured.

getaddrinfo gives no TTL, so answers live for the configured ttl_seconds; it runs in the event
loop's default thread pool, so many lookups at once are bounded by that pool. getaddrinfo knows only
addresses: other record types go to the nameservers the system is configured with (resolv.conf, as
dnspython reads it), asked directly with their TTLs.
"""

from __future__ import annotations

import asyncio
import socket

from scancache.dns.resolver import NameserverUpstream, Resolution
from scancache.dns.wire import AAAA, A
from scancache.errors import DNSError

__all__ = ["SystemUpstream"]

# getaddrinfo errors that mean "this name has no such address" rather than "could not ask".
_NEGATIVE = {getattr(socket, n): kind for n, kind in
             (("EAI_NONAME", "NXDOMAIN"), ("EAI_NODATA", "NODATA"), ("EAI_ADDRFAMILY", "NODATA"))
             if hasattr(socket, n)}


class SystemUpstream:
    """Resolve with loop.getaddrinfo; A+AAAA in one call (AF_UNSPEC), ttl None (use the default)."""

    def __init__(self, *, timeout_seconds: float = 2.0, attempts: int = 3) -> None:
        self.counters = {"upstream_lookups": 0, "nxdomain": 0, "nodata": 0, "system_errors": 0}
        self._timeout, self._attempts = timeout_seconds, attempts
        self._direct: NameserverUpstream | None = None  # for record types getaddrinfo cannot ask

    def _nameservers(self) -> NameserverUpstream:
        if self._direct is None:
            import dns.resolver

            try:
                configured = dns.resolver.Resolver(configure=True)
                servers = [(str(s), int(configured.port)) for s in configured.nameservers]
            except Exception as exc:  # no resolv.conf, or one dnspython cannot read
                raise DNSError("", f"system resolver: no nameservers configured ({exc})") from None
            self._direct = NameserverUpstream(servers, timeout_seconds=self._timeout,
                                              attempts=self._attempts)
        return self._direct

    async def lookup(self, name: str, qtypes: tuple[int, ...]) -> list[Resolution | DNSError]:
        """One getaddrinfo call answering all qtypes; the result stands for the first entry."""
        if not set(qtypes) <= {A, AAAA}:
            try:
                direct = self._nameservers()
            except DNSError as exc:
                return [DNSError(name, exc.reason) for _ in qtypes]
            return await direct.lookup(name, qtypes)
        self.counters["upstream_lookups"] += 1
        family = socket.AF_UNSPEC
        if qtypes == (A,):
            family = socket.AF_INET
        elif qtypes == (AAAA,):
            family = socket.AF_INET6
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, None, family=family, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            kind = _NEGATIVE.get(exc.errno)
            if kind is None:
                self.counters["system_errors"] += 1
                return [DNSError(name, f"system resolver: {exc.strerror or exc}")]
            self.counters["nxdomain" if kind == "NXDOMAIN" else "nodata"] += 1
            return [Resolution([], None, kind)]
        except (OSError, UnicodeError) as exc:
            self.counters["system_errors"] += 1
            return [DNSError(name, f"system resolver: {exc}")]
        addresses: list[str] = []
        for info_family, _, _, _, sockaddr in infos:
            if info_family in (socket.AF_INET, socket.AF_INET6):
                address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
                if address not in addresses:
                    addresses.append(address)
        if not addresses:
            self.counters["nodata"] += 1
            return [Resolution([], None, "NODATA")]
        return [Resolution(addresses, None)]

    def close(self) -> None:
        """Close the sockets of the direct nameserver client, if one was opened."""
        if self._direct is not None:
            self._direct.close()
