"""DNSCache: a caching resolver that keeps each answer exactly as long as DNS says it may.

Policy, all here: a record's TTL clamped to [min_ttl_seconds, ttl_seconds]; NXDOMAIN/NODATA cached
for the SOA minimum (RFC 2308) clamped to negative_ttl_seconds; answers kept stale_ttl_seconds past
expiry and served when upstream fails (RFC 8767), then refreshed in the background at most once per
name at a time and at most every REFRESH_BACKOFF_SECONDS; a hit in the last tenth of a TTL prefetches;
concurrent misses of one name share one upstream lookup. Storage is the cache core (any backend),
namespace "dns", values [addresses, ttl] ([[], ttl, "NXDOMAIN"] for a name that does not exist) so
every backend can hold them.

Every key starts with the answers' source (a digest of the nameserver set, or "system"), so a cache
shared by resolvers that ask different nameservers never serves one source's answers to another:
a lying or stale server cannot poison what the others return.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from scancache._log import get_logger
from scancache.cache.core import Cache, CacheEntry
from scancache.cache.memory import MemoryBackend
from scancache.cache.singleflight import AsyncSingleFlight
from scancache.cache_config import CacheConfig
from scancache.dns.config import DNSConfig, parse_nameserver
from scancache.dns.names import MAX_NAME_LENGTH, NORMAL_NAME, ip_literal, normalise_name
from scancache.dns.rdtypes import canonical_rdtype, reverse_name
from scancache.dns.resolver import NameserverUpstream, Resolution, Upstream
from scancache.dns.result import DNSResult, Record, cached_row_json
from scancache.dns.system import SystemUpstream
from scancache.dns.wire import AAAA, A
from scancache.errors import DNSError

if TYPE_CHECKING:
    from scancache.cache.write_behind import WriteBehind
    from scancache.dns.wildcard import WildcardDetector

__all__ = ["DNSCache", "as_dns_config", "source_id", "PREFETCH_FRACTION", "REFRESH_BACKOFF_SECONDS"]

log = get_logger("scancache.dns")

#: A fresh hit with less than this fraction of its TTL left starts a background refresh.
PREFETCH_FRACTION = 0.1
#: After a failed refresh, a name is not sent upstream again in the background for this long.
REFRESH_BACKOFF_SECONDS = 5.0
_MEMO_MAX = 65536  # normalised names remembered per record type (cleared when full)
_BACKOFF_MAX = 65536
_ADDRESS_TYPES = {None: (A, AAAA), "A": (A,), "AAAA": (AAAA,)}
_normal_name = NORMAL_NAME.match
_record = tuple.__new__  # Record(...) without NamedTuple's Python-level __new__ (the bulk path)
T = TypeVar("T")  # what a bulk read makes of each answer (a DNSResult or its JSON row)
_FAMILY_OK: dict[str | None, Callable[[str], bool]] = {
    None: lambda ip: True, "A": lambda ip: ":" not in ip, "AAAA": lambda ip: ":" in ip}


def source_id(nameservers: Iterable[tuple[str, int]] | None) -> str:
    """The cache-key tag of a nameserver set: order-free digest of "ip:port"s; "system" for none.

    Answers are cached under their source, so switching nameservers never reuses another set's
    answers (a resolver that lies must not poison what an honest one returns from the same cache).
    """
    servers = sorted({f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in nameservers or ()})
    if not servers:
        return "system"
    return "ns-" + hashlib.sha256(",".join(servers).encode()).hexdigest()[:20]


def as_dns_config(config: CacheConfig | None) -> DNSConfig:
    """A DNSConfig from a DNSConfig, a plain CacheConfig (its non-default fields kept) or None.

    Fields a CacheConfig leaves at their defaults take DNSConfig's (e.g. the 1 h stale window), and
    namespace "default" becomes "dns" so DNS entries never mix with other users of one backend.
    """
    if config is None:
        config = DNSConfig()
    elif not isinstance(config, DNSConfig):
        if not isinstance(config, CacheConfig):
            raise TypeError(f"config must be a CacheConfig or DNSConfig, got {type(config).__name__}")
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(CacheConfig)
                  if f.init and getattr(config, f.name) != f.default}
        values.setdefault("min_ttl_seconds", min(DNSConfig.min_ttl_seconds, config.ttl_seconds))
        config = DNSConfig(**values)
    if config.namespace == "default":
        config = dataclasses.replace(config, namespace="dns")
    return config


class DNSCache:
    """Resolve host names to addresses through a cache that honours each answer's TTL.

    nameservers ("ip" or "ip:port") override config.nameservers and SCANCACHE_DNS_NAMESERVERS;
    with none of them the system resolver is used (no TTLs: ttl_seconds applies). Pass cache= to
    share a Cache, clock= (epoch seconds) to test expiry, upstream= to plug in another source.
    Use from one event loop at a time; call aclose() (or `async with`) when done.
    """

    def __init__(self, config: CacheConfig | None = None, nameservers: Iterable[str] | None = None, *,
                 cache: Cache | None = None, clock: Callable[[], float] | None = None,
                 upstream: Upstream | None = None) -> None:
        self.config = config = as_dns_config(config)
        if isinstance(nameservers, str):  # "ip[:port],ip[:port]" as in SCANCACHE_DNS_NAMESERVERS
            nameservers = [s.strip() for s in nameservers.split(",") if s.strip()]
        servers = list(nameservers) if nameservers is not None else list(config.nameservers or [])
        addresses = [parse_nameserver(s) for s in servers]
        self._owns_cache = cache is None
        if cache is None:
            cache = Cache(config, clock=clock or time.time, name="dns")
        self.cache = cache
        self._memory_only = type(cache.backend) is MemoryBackend
        self._get_entry = cache.get_entry
        self._clock = clock or cache.clock
        if upstream is None:
            upstream = (NameserverUpstream(addresses, timeout_seconds=config.timeout_seconds,
                                           attempts=config.attempts) if addresses
                        else SystemUpstream(timeout_seconds=config.timeout_seconds,
                                            attempts=config.attempts))
        self.upstream = upstream
        self.nameservers = [f"{h}:{p}" for h, p in addresses]
        # Where answers come from, first in every key (see the module docstring). A plugged-in
        # upstream names its source with a `source` attribute.
        given = getattr(upstream, "source", None)
        if isinstance(given, str) and given:
            self.source = given
        elif isinstance(upstream, (NameserverUpstream, SystemUpstream)):
            self.source = source_id(addresses if isinstance(upstream, NameserverUpstream) else None)
        else:
            self.source = f"upstream-{type(upstream).__qualname__}"
        self._prefix = self.source + "|"
        pool = getattr(upstream, "resolvers", None)
        self._resolver_label = (f"pool of {len(pool)}" if isinstance(pool, list)
                                else ",".join(self.nameservers) or "system")
        self._memo: dict[str | None, dict[str, str]] = {rdtype: {} for rdtype in _ADDRESS_TYPES}
        self._qtypes: dict[str | None, tuple[int, ...]] = dict(_ADDRESS_TYPES)  # grows per type asked
        self._flights = AsyncSingleFlight()
        self._wildcards: WildcardDetector | None = None  # made on first use
        self._prefetch = config.prefetch
        self._stale_ttl = config.stale_ttl_seconds
        self._refreshing: set[str] = set()
        self._backoff: dict[str, float] = {}  # key -> no background refresh before this time
        self._tasks: set[asyncio.Task[None]] = set()
        # While a bulk run (dns/bulk.py) is on, answers are stored through its gathered writes.
        self._writes: WriteBehind | None = None
        # Keys a bulk run's batch read found in neither the cache nor its writes, until their lookup
        # (see _answered): _value asks upstream for them without reading the cache a second time.
        self._absent: set[str] = set()
        self.prefetches = 0
        self.stale_served = 0
        self.background_refreshes = 0
        self.refresh_failures = 0
        if config.enable_metrics:  # one place (scancache.metrics) sees every live cache
            from scancache.metrics import register_automatically

            self.metrics_name = register_automatically("dns", self)

    # ------------------------------------------------------------------ names
    def cache_key(self, hostname: str, rdtype: str | int | None = None) -> str:
        """The key under which hostname's rdtype answer is cached (source, name, type).

        ValueError for an invalid name or rdtype. An address literal has a key ("=ip") but is
        never stored.
        """
        return self._key(hostname, rdtype)

    def _rdtype(self, rdtype: str | int | None) -> str | None:
        """The canonical name of rdtype (None: A and AAAA together), registered for keys."""
        if rdtype is None:
            return None
        name, code = canonical_rdtype(rdtype)
        if name not in self._memo:
            self._qtypes[name] = (code,)
            self._memo[name] = {}
        return name

    def _key(self, hostname: str, rdtype: str | int | None) -> str:
        """The cache key of (hostname, rdtype), memoised; ValueError for a bad name or rdtype."""
        memo = self._memo.get(rdtype)  # type: ignore[arg-type]  # any key: a miss canonicalises
        if memo is None:
            rdtype = self._rdtype(rdtype)
            memo = self._memo[rdtype]
        key = memo.get(hostname)
        if key is None:
            suffix = "/" + rdtype if rdtype else ""  # type: ignore[operator]  # canonical: str or None
            if type(hostname) is str and len(hostname) <= MAX_NAME_LENGTH and _normal_name(hostname):
                key = self._prefix + hostname + suffix  # already normalised, not an address
            else:
                ip = ip_literal(hostname)
                if ip is None:
                    key = self._prefix + normalise_name(hostname) + suffix
                elif rdtype == "PTR":
                    key = self._prefix + reverse_name(ip) + suffix
                elif rdtype in _ADDRESS_TYPES:
                    key = "=" + ip
                else:
                    raise ValueError(f"an address has no {rdtype} records: {hostname!r}")
            if len(memo) >= _MEMO_MAX:
                memo.clear()  # bounded: a scan of millions of names must not grow this forever
            memo[hostname] = key
        return key

    # ------------------------------------------------------------------ resolve
    async def resolve(self, hostname: str, rdtype: str | None = None) -> list[str]:
        """The addresses of hostname (A and AAAA, or only rdtype "A"/"AAAA"); [] if it has none.

        A fresh cached answer costs one dict lookup and a list copy. Otherwise one upstream lookup,
        shared by every concurrent caller of the same name. Raises ValueError for an invalid name
        (before any query) and DNSError for SERVFAIL, REFUSED or timeout when no cached answer,
        even a stale one, can stand in.
        """
        memo = self._memo.get(rdtype)
        try:
            key = memo.get(hostname) if memo is not None else None
        except TypeError:  # unhashable: certainly no host name
            raise ValueError(f"host name must be a str, got {type(hostname).__name__}") from None
        if key is None:
            if rdtype is not None and (not isinstance(rdtype, str)
                                       or rdtype.upper() not in _ADDRESS_TYPES):
                raise ValueError(f"resolve() returns addresses: rdtype must be None, 'A' or 'AAAA', "
                                 f"got {rdtype!r} (use query() for other record types)")
            key = self._key(hostname, rdtype.upper() if rdtype else None)
        if key[0] == "=":
            ip = key[1:]
            return [ip] if _FAMILY_OK[rdtype.upper() if rdtype else None](ip) else []
        return list((await self._value(key))[0][0])

    async def query(self, hostname: str, rdtype: str | int | None = None) -> DNSResult:
        """hostname's rdtype records, each as presentation text with the TTL it has left.

        rdtype: None (A and AAAA), a mnemonic ("MX", "https"), a number (65) or "TYPE65". PTR of
        an address literal asks its reverse name. Each (name, type) is cached for its own TTL;
        NXDOMAIN and NODATA are results (status "NXDOMAIN", or "NOERROR" with no records) cached
        per type (RFC 2308), not errors. Raises ValueError for an invalid name or type before any
        query, and DNSError like resolve().
        """
        kind = self._rdtype(rdtype)
        key = self._key(hostname, kind)
        if key[0] == "=":
            return self._literal_result(hostname, kind, key[1:])
        value, ttl_left, cached = await self._value(key)
        return self._result(hostname, kind, value, ttl_left, cached)

    def _result(self, hostname: str, kind: str | None, value: list[Any], ttl_left: float,
                cached: bool) -> DNSResult:
        """The DNSResult of a cached value [addresses or records, ttl(, "NXDOMAIN")]."""
        ttl = max(int(ttl_left), 0)
        if kind is None:
            records = [_record(Record, ("AAAA" if ":" in data else "A", data, ttl)) for data in value[0]]
        else:
            records = [_record(Record, (kind, data, ttl)) for data in value[0]]
        status = value[2] if len(value) > 2 else "NOERROR"
        return DNSResult(hostname, kind, status, records, cached=cached, resolver=self._resolver_label)

    def _result_json(self, hostname: str, kind: str | None, value: list[Any], ttl_left: float,
                     cached: bool) -> str:
        """_result(...).as_json(), without building the result (see cached_row_json)."""
        status = value[2] if len(value) > 2 else "NOERROR"
        return cached_row_json(hostname, kind, status, value[0], max(int(ttl_left), 0),
                               self._resolver_label, cached)

    @staticmethod
    def _literal_result(hostname: str, kind: str | None, ip: str) -> DNSResult:
        ok = _FAMILY_OK[kind](ip)
        records = [Record("AAAA" if ":" in ip else "A", ip, 0)] if ok else []
        return DNSResult(hostname, kind, "NOERROR", records, cached=True, resolver="literal")

    # ------------------------------------------------------------------ many at once, cache only
    async def resolve_cached(self, names: list[str], rdtype: str | None = None
                             ) -> list[list[str] | None]:
        """resolve() for each name where the cache answers fresh, else None, in names' order.

        One cache read for all names (Cache.get_entries); nothing is sent upstream and nothing
        raises: a None (missing, stale or invalid name) is for resolve() to answer, with its
        serve-stale, refresh and errors. The bulk path of resolve_many."""
        if rdtype is not None and (not isinstance(rdtype, str) or rdtype.upper() not in _ADDRESS_TYPES):
            return [None] * len(names)  # resolve() raises the ValueError
        kind = rdtype.upper() if rdtype else None
        keys = self._keys((name, kind) for name in names)
        found = await self._answered(keys)
        out: list[list[str] | None] = []
        for key in keys:
            if key is None:
                out.append(None)
            elif key[0] == "=":
                ip = key[1:]
                out.append([ip] if _FAMILY_OK[kind](ip) else [])
            else:
                hit = found.get(key)
                out.append(None if hit is None else list(hit[0][0]))
        return out

    async def query_cached(self, queries: list[tuple[str, str | int | None]]
                           ) -> list[DNSResult | None]:
        """query(name, rdtype) for each pair where the cache answers fresh, else None, in order;
        one cache read for all, as resolve_cached."""
        return await self._query_cached(queries, self._result, lambda result: result)

    async def query_cached_json(self, queries: list[tuple[str, str | int | None]]
                                ) -> list[str | None]:
        """query_cached(queries) with each DNSResult as its as_json() text: the rows of a bulk
        `scancache resolve`, written from the cached values without building results (a tenth
        of a warm run's CPU)."""
        return await self._query_cached(queries, self._result_json, DNSResult.as_json)

    async def _query_cached(self, queries: list[tuple[str, str | int | None]],
                            from_value: Callable[[str, str | None, list[Any], float, bool], T],
                            from_result: Callable[[DNSResult], T]) -> list[T | None]:
        """query_cached's body: from_value(name, kind, value, seconds left, True) for a cached
        answer, from_result(DNSResult) for an address literal's, None for the rest."""
        kinds: list[str | None] = []
        for _, rdtype in queries:
            try:
                kinds.append(self._rdtype(rdtype))
            except ValueError:
                kinds.append("?")  # query() raises the ValueError
        keys = self._keys((name, kind) for (name, _), kind in zip(queries, kinds, strict=True))
        found = await self._answered(keys)
        out: list[T | None] = []
        for (name, _), kind, key in zip(queries, kinds, keys, strict=True):
            if key is None:
                out.append(None)
            elif key[0] == "=":
                out.append(from_result(self._literal_result(name, kind, key[1:])))
            else:
                hit = found.get(key)
                out.append(None if hit is None else from_value(name, kind, hit[0], hit[1], True))
        return out

    def _keys(self, queries: Iterable[tuple[str, str | None]]) -> list[str | None]:
        """The cache key of each (name, canonical rdtype); None for an invalid one ("?": invalid type)."""
        keys: list[str | None] = []
        prefix, key_of = self._prefix, self._key
        for name, kind in queries:
            if kind == "?":
                keys.append(None)
            elif type(name) is str and len(name) <= MAX_NAME_LENGTH and _normal_name(name):
                # _key's fast case without its memo: a bulk run meets each name once
                keys.append(prefix + name + "/" + kind if kind else prefix + name)
            else:
                try:
                    keys.append(key_of(name, kind))
                except (ValueError, TypeError):
                    keys.append(None)
        return keys

    async def _answered(self, keys: list[str | None]) -> dict[str, tuple[list[Any], float]]:
        """{key: (value, seconds left)} for the keys (not None, not "=literal") the cache answers
        fresh: stored (one get_entries for all) or gathered by this bulk run and not yet stored.
        A hit in the last tenth of its TTL starts a prefetch, as in _value.

        In a bulk run on a disk, Redis or hybrid cache (self._writes set), a key found nowhere is
        remembered in _absent until its lookup: _value then skips its second read (on SQLite a
        statement and its locks per name, a third of what a cold run adds to a memory run). Any
        answer this DNSCache stores removes its key from _absent, so a name met again after its
        answer was stored is read, never asked twice; a name another process stores meanwhile is
        asked once more, as it would be by any lookup that raced that process. Other keys left out
        (stale, or outside a bulk run) are read again by _value and counted there, not twice."""
        wanted = list(dict.fromkeys(k for k in keys if k is not None and k[0] != "="))
        if not wanted:
            return {}
        cache = self.cache
        entries = cache.get_entries(wanted) if self._memory_only else await cache.aget_entries(wanted)
        now = self._clock()
        writes = self._writes
        prefetch = self._prefetch
        out: dict[str, tuple[list[Any], float]] = {}
        missing = stale = 0
        absent = self._absent
        for key in wanted:
            entry = entries.get(key)
            if entry is None:
                record = writes.pending_record(key) if writes is not None else None
                if record is not None and (left := record.expires_at - now) > 0:
                    out[key] = (record.value, left)
                elif writes is not None:
                    absent.add(key)  # its miss is counted here, once
                else:
                    missing += 1
            elif entry.is_stale:
                stale += 1
            else:
                value = entry.value
                left = entry.expires_at - now
                if prefetch and left < value[1] * PREFETCH_FRACTION:
                    self._refresh_in_background(key, prefetch=True)
                out[key] = (value, left)
        stats = cache.stats
        stats.misses -= missing
        stats.stale_hits -= stale
        return out

    async def check_wildcard(self, result: DNSResult) -> bool:
        """Set result.wildcard: True when all its records are what its parent zone's wildcard
        answers any name (random labels probed once per zone and type, cached for their TTL).
        See scancache.dns.wildcard."""
        detector = self._wildcards
        if detector is None:
            from scancache.dns.wildcard import WildcardDetector

            detector = self._wildcards = WildcardDetector(self)
        return await detector.check(result)

    async def reverse(self, address: str) -> list[str]:
        """The host names an address's PTR records name (without the trailing dot); [] if none.

        ValueError if address is no IPv4/IPv6 address; DNSError like resolve().
        """
        if ip_literal(address) is None:
            raise ValueError(f"not an IP address: {address!r}")
        result = await self.query(address, "PTR")
        return [record.data.rstrip(".") for record in result.records]

    async def _value(self, key: str) -> tuple[list[Any], float, bool]:
        """(cached value, seconds it has left, whether it came from the cache) for key."""
        # A memory read never blocks: call it directly (one coroutine fewer on every lookup).
        absent = self._absent
        if absent and key in absent:  # a bulk run's batch read just found nothing: not read again
            absent.discard(key)
            entry = None
        else:
            entry = self._get_entry(key) if self._memory_only else await self.cache.aget_entry(key)
        if entry is None:
            writes = self._writes  # a bulk run: its answer may be gathered but not yet stored
            record = writes.pending_record(key) if writes is not None else None
            if record is not None and (left := record.expires_at - self._clock()) > 0:
                return record.value, left, True
            value = await self._fetch(key)
            return value, value[1], False
        if not entry.is_stale:
            value = entry.value
            left = entry.expires_at - self._clock()
            if self._prefetch and left < value[1] * PREFETCH_FRACTION:
                self._refresh_in_background(key, prefetch=True)
            return value, left, True
        return await self._resolve_stale(key, entry)

    async def _resolve_stale(self, key: str, entry: CacheEntry) -> tuple[list[Any], float, bool]:
        # Stale: ask upstream once in the foreground; while it keeps failing, serve stale at once
        # and let at most one background refresh per name try again, every few seconds.
        if key not in self._backoff:
            try:
                value = await self._fetch(key)
                return value, value[1], False
            except DNSError as exc:
                self._note_failure(key)
                log.debug("dns: serving stale %s after %s", key, exc.reason)
        else:
            self._refresh_in_background(key)
        self.stale_served += 1
        return entry.value, 0.0, True

    async def _fetch(self, key: str) -> list[Any]:
        """The value for key from upstream; concurrent callers of one key share one lookup."""
        value: list[Any] = await self._flights.call(key, self._lookup, key)
        return value

    async def _lookup(self, key: str) -> list[Any]:
        """Ask upstream for key, store the answer with its clamped TTL, return the stored value."""
        name, _, rdtype = key[len(self._prefix):].partition("/")
        value = self._merge(await self.upstream.lookup(name, self._qtypes[rdtype or None]))
        if self._memory_only:  # a dict write never blocks: skip the coroutine hop
            self.cache.set(key, value, value[1], stale_ttl=self._stale_ttl)
        elif self._writes is not None:  # a bulk run: stored with its batch, one set_many
            self._writes.put(key, value, value[1], stale_ttl=self._stale_ttl)
        else:
            await self.cache.aset(key, value, value[1], stale_ttl=self._stale_ttl)
        if self._backoff:
            self._backoff.pop(key, None)
        if self._absent:  # stored now: a later lookup of key must read it, not skip the read
            self._absent.discard(key)
        return value

    @property
    def coalesced(self) -> int:
        """Lookups that waited for another caller's identical lookup instead of asking upstream."""
        return self._flights.joined

    def _merge(self, results: list[Resolution | DNSError]) -> list[Any]:
        """[addresses, shortest clamped TTL] (plus "NXDOMAIN" for a name that does not exist) from
        every record type's result; raises the first DNSError if nothing answered."""
        config = self.config
        if len(results) == 1:  # one record type answered: the bulk path
            result = results[0]
            if not isinstance(result, DNSError) and result.addresses:
                ttl = config.ttl_seconds if result.ttl is None else result.ttl
                return [result.addresses, min(max(ttl, config.min_ttl_seconds), config.ttl_seconds)]
        addresses: list[str] = []
        ttls: list[float] = []
        error: DNSError | None = None
        nxdomain = False
        for result in results:
            if isinstance(result, DNSError):
                error = error or result
            elif result.addresses:
                addresses.extend(result.addresses)
                ttl = config.ttl_seconds if result.ttl is None else result.ttl
                ttls.append(min(max(ttl, config.min_ttl_seconds), config.ttl_seconds))
            else:
                nxdomain = nxdomain or result.negative == "NXDOMAIN"
                ttl = config.negative_ttl_seconds if result.ttl is None else result.ttl
                ttls.append(min(max(ttl, config.min_ttl_seconds), config.negative_ttl_seconds))
        if error is not None:
            if not addresses:
                raise error
            ttls.append(config.min_ttl_seconds)  # A answered, AAAA failed: ask again soon
        if not addresses and nxdomain:
            return [addresses, min(ttls), "NXDOMAIN"]
        return [addresses, min(ttls)]

    # ------------------------------------------------------------------ background refresh
    def _note_failure(self, key: str) -> None:
        backoff = self._backoff
        backoff.pop(key, None)
        if len(backoff) >= _BACKOFF_MAX:
            del backoff[next(iter(backoff))]  # oldest first: insertion order
        backoff[key] = self._clock() + REFRESH_BACKOFF_SECONDS

    def _refresh_in_background(self, key: str, *, prefetch: bool = False) -> None:
        """Start one refresh of key unless one runs already or the last one failed recently."""
        if key in self._refreshing or self._clock() < self._backoff.get(key, 0.0):
            return
        self._refreshing.add(key)
        if prefetch:
            self.prefetches += 1
        else:
            self.background_refreshes += 1
        task = asyncio.get_running_loop().create_task(self._refresh(key))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._refresh_done(done, key))

    def _refresh_done(self, task: asyncio.Task[None], key: str) -> None:
        # A callback, not a finally: a task cancelled before it ran never reaches its finally.
        self._tasks.discard(task)
        self._refreshing.discard(key)

    async def _refresh(self, key: str) -> None:
        try:
            await self._fetch(key)
        except DNSError:
            self.refresh_failures += 1
            self._note_failure(key)
        except Exception:  # a refresh must never kill the loop; the stale answer still serves
            self.refresh_failures += 1
            self._note_failure(key)
            log.exception("dns: background refresh of %s failed", key)

    async def wait_background(self) -> None:
        """Wait for background refreshes and prefetches started so far (tests, clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ bulk
    def resolve_many(self, names: Iterable[str], *, concurrency: int = 256, rdtype: str | None = None,
                     progress: Callable[[int, int | None], Any] | None = None
                     ) -> AsyncIterator[tuple[str, list[str] | DNSError]]:
        """Stream (name, addresses or DNSError) for every name, as answers arrive (not in order).

        At most `concurrency` lookups run at once; progress(done, total) is called after each
        result. An invalid name yields DNSError(name, "invalid name: ...") instead of stopping the
        run. Breaking out of the loop cancels the lookups still running.
        """
        from scancache.dns.bulk import resolve_many

        return resolve_many(self, names, concurrency=concurrency, rdtype=rdtype, progress=progress)

    def query_many(self, names: Iterable[str], *, concurrency: int = 256, rdtype: str | None = None,
                   progress: Callable[[int, int | None], Any] | None = None
                   ) -> AsyncIterator[tuple[str, DNSResult | DNSError]]:
        """Stream (name, DNSResult or DNSError) for every name, as answers arrive; as resolve_many."""
        from scancache.dns.bulk import query_many

        return query_many(self, names, concurrency=concurrency, rdtype=rdtype, progress=progress)

    # ------------------------------------------------------------------ stats and lifecycle
    def get_stats(self) -> dict[str, Any]:
        """The cache's stats plus DNS counters (upstream_queries, timeouts, servfails, nxdomain,
        coalesced, prefetches, stale_served, ...). Cost: the backend's size(), which on Redis is
        a SCAN of the whole database (O(keys)); everything else is counters."""
        stats = self.cache.get_stats()
        dns = {"upstream_queries": 0, "timeouts": 0, "servfails": 0, "refused": 0, "nxdomain": 0,
               "nodata": 0}
        dns.update(self.upstream.counters)
        client_counters = getattr(self.upstream, "client_counters", None)
        if client_counters is not None:
            dns.update(client_counters())
        else:
            dns["upstream_queries"] = dns.get("upstream_lookups", 0)
        dns.update(coalesced=self.coalesced, prefetches=self.prefetches,
                   stale_served=self.stale_served, background_refreshes=self.background_refreshes,
                   refresh_failures=self.refresh_failures, refreshing=len(self._refreshing))
        if self._wildcards is not None:
            dns.update(wildcard_probes=self._wildcards.probes_sent,
                       wildcard_flagged=self._wildcards.flagged)
        stats.update(dns)
        stats["nameservers"] = list(self.nameservers) or ["system"]
        resolver_stats = getattr(self.upstream, "resolver_stats", None)
        if resolver_stats is not None:  # a ResolverPool: figures per resolver
            stats["resolvers"] = resolver_stats()
            stats["nameservers"] = list(stats["resolvers"])
        return stats

    def close(self) -> None:
        """Cancel background refreshes, close sockets and (if this object made it) the cache."""
        for task in list(self._tasks):
            task.cancel()
        self.upstream.close()
        if self._owns_cache:
            self.cache.close()

    async def aclose(self) -> None:
        """Async close: cancel and await background refreshes, then release sockets and cache."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._writes is not None:  # a bulk run left unfinished: store what it gathered
            await self._writes.aclose()
        self.upstream.close()
        if self._owns_cache:
            await self.cache.aclose()

    async def __aenter__(self) -> DNSCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> DNSCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        servers = ",".join(self.nameservers) or "system"
        return f"<DNSCache {servers} {self.config.cache_type.value}>"
