"""VulnerabilityDBCache: OSV and NVD answers, cached by question and by record, batched, rate limited.

Three kinds of cache entries (namespace "vulndb" unless configured otherwise), each keyed by the
upstream that answered (`<source>`: a hash of the OSV base URL; of the NVD URL for NVD searches; of
both for cve_id queries), so an answer from one server is never served for another:
- `q:<source>:<sha256 of the canonical query>` -> `{"ids": [[id, modified], ...]}` for OSV answers,
  or `{"records": [...]}` for NVD answers (NVD records are rarely shared between questions);
- `v:<source>:<id>` -> the full OSV record, so a record that many packages share is fetched and
  stored once, and refetched only when OSV reports a newer `modified` (a record past its TTL whose
  `modified` is still current is reused from its stale window and stored again, not refetched);
- `d:<source>:<key>` -> what an audit derived from records (each package's findings), keyed by the
  package and the (id, modified) of every record it was derived from, so a changed record is a new
  key: a warm audit reads these instead of decoding every record (scancache.vulndb.audit).
OSV answers and derived findings, which every warm audit reads, are stored uncompressed
(compress=False: such a run then never imports zstandard); records keep the configured compression.
Empty answers are cached for negative_ttl_seconds. Entries outlive their TTL by stale_ttl_seconds,
and a stale answer is served (result.stale is True) when the API is down. The offline mirror is a
source of its own: its answers never go through this cache.

Every record is checked (scancache.vulndb.records) before it is used or stored: a malformed one is
skipped with one warning naming its id, never cached, and listed in the answer's `skipped`.

cve_id queries ask OSV's /v1/vulns/{id} first (OSV mirrors NVD's CVEs for the ecosystems it
covers); on a 404 they ask NVD and return its CVE converted to OSV shape. cpe/keyword queries go
to NVD only. With a mirror (mirror= or config.mirror_path) package, commit and cve_id queries are
answered offline from it and never touch the network.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from scancache.cache.core import Cache
from scancache.cache.digest import sha256_hex
from scancache.cache_config import CacheConfig, CacheType
from scancache.errors import VulnDBError
from scancache.vulndb.config import VulnDBConfig
from scancache.vulndb.query import Query, parse_query
from scancache.vulndb.record_store import RecordStore, wanted_ids
from scancache.vulndb.result import VulnResult

if TYPE_CHECKING:  # imported when first used: a query may need neither
    from scancache.vulndb.audit import AuditReport
    from scancache.vulndb.mirror import OSVMirror

#: progress(done, total): called as long work advances (a CLI draws a bar with it).
Progress = Callable[[int, int], None]

__all__ = ["VulnerabilityDBCache", "VulnResult"]


async def _sleep(seconds: float) -> None:
    """asyncio.sleep, imported when a backoff or a rate limit first waits: a run answered from the
    cache alone never imports asyncio."""
    import asyncio

    await asyncio.sleep(seconds)


def _as_vulndb_config(config: CacheConfig | None, overrides: dict[str, Any]) -> VulnDBConfig:
    if config is None:
        config = VulnDBConfig(**overrides)
    elif not isinstance(config, VulnDBConfig) or overrides:
        known = {f.name for f in fields(VulnDBConfig)}
        # A plain CacheConfig's untouched defaults give way to VulnDBConfig's (max_size 20,000: an
        # audit's records outgrow CacheConfig's 1,000 and a warm audit would fetch them again).
        values = {f.name: getattr(config, f.name) for f in fields(config) if f.name in known
                  and (isinstance(config, VulnDBConfig) or getattr(config, f.name) != f.default)}
        if overrides.get("nvd_api_key") and not values.get("nvd_api_key") \
                and getattr(config, "nvd_rate_limit_derived", True):
            values.pop("nvd_rate_limit", None)  # derived from the (absent) key: a key raises it
        config = VulnDBConfig(**{**values, **overrides})
    if config.namespace == "default":  # a copy: the caller's config object is left as it was
        config = replace(config, namespace="vulndb")
    return config


class VulnerabilityDBCache:
    """Cached OSV/NVD vulnerability queries: `await query_vulnerability_db(query)`, `query_many`, `audit`.

    config: a VulnDBConfig, or a CacheConfig whose fields are kept (endpoints then come from the
    arguments, SCANCACHE_OSV_URL / SCANCACHE_NVD_URL, or the public APIs). cache: share an existing
    Cache instead of building one. http_client: an httpx.AsyncClient (or a
    scancache.vulndb.transport.Transport) to use, not closed by us; by default a pyreqwest client is
    opened on the first request.
    clock and sleep are injectable so TTLs, backoff and rate-limit windows are testable without waiting.
    """

    def __init__(
        self,
        config: CacheConfig | None = None,
        osv_url: str | None = None,
        nvd_url: str | None = None,
        nvd_api_key: str | None = None,
        *,
        cache: Cache | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = _sleep,
        http_client: Any = None,
        mirror: Any = None,
    ) -> None:
        overrides = {k: v for k, v in (("osv_url", osv_url), ("nvd_url", nvd_url),
                                       ("nvd_api_key", nvd_api_key)) if v is not None}
        self.config = config = _as_vulndb_config(config, overrides)
        self._owns_cache = cache is None
        self.cache = cache if cache is not None else Cache(config, clock=clock)
        self.clock = clock
        self.sleep = sleep
        self._http_client = http_client
        self._transport: Any = None
        self._json: Any = None
        self._osv: Any = None
        self._nvd: Any = None
        self._limiter: Any = None
        self._mirror_arg = mirror if mirror is not None else config.mirror_path
        self._mirror: OSVMirror | None = None
        self.counters = {"stale_served": 0, "mirror_answers": 0, "records_fetched": 0,
                         "records_reused": 0, "records_skipped": 0}
        osv_tag = _source_tag("osv", config.osv_url or "")
        #: The key prefix of each kind of answer: which upstream(s) it came from.
        self._prefixes = {"package": f"q:{osv_tag}:", "commit": f"q:{osv_tag}:",
                          "cve": f"q:{_source_tag('osv+nvd', config.osv_url or '', config.nvd_url or '')}:",
                          "nvd": f"q:{_source_tag('nvd', config.nvd_url or '')}:"}
        self._record_prefix = f"v:{osv_tag}:"
        #: What an audit derived from this source's records (see derived()).
        self._derived_prefix = f"d:{osv_tag}:"
        self._records = RecordStore(self.cache, self._record_prefix, config.ttl_seconds,
                                    lambda: self._clients()[0], self.counters)
        if config.enable_metrics:  # one place (scancache.metrics) sees every live cache
            from scancache.metrics import register_automatically

            self.metrics_name = register_automatically("vulndb", self)

    # ------------------------------------------------------------------ clients (built lazily)
    def _clients(self) -> tuple[Any, Any]:
        if self._osv is None:
            from scancache.vulndb.http import JSONClient
            from scancache.vulndb.nvd import NVDClient
            from scancache.vulndb.osv import OSVClient
            from scancache.vulndb.transport import make_transport

            cfg = self.config
            # The OSV semaphores bound what is in flight; a few more for NVD and retries.
            self._transport = make_transport(self._http_client, timeout_seconds=cfg.timeout_seconds,
                                             connections=cfg.osv_concurrency + 8,
                                             max_body_bytes=cfg.max_response_bytes)
            self._json = JSONClient(self._transport, max_retries=cfg.max_retries,
                                    backoff_base_seconds=cfg.backoff_base_seconds,
                                    backoff_max_seconds=cfg.backoff_max_seconds, sleep=self.sleep)
            self._limiter = self._make_limiter()
            self._osv = OSVClient(self._json, cfg.osv_url or "", concurrency=cfg.osv_concurrency)
            self._nvd = NVDClient(self._json, cfg.nvd_url or "", api_key=cfg.nvd_api_key,
                                  limiter=self._limiter, page_size=cfg.nvd_page_size)
        return self._osv, self._nvd

    def _make_limiter(self) -> Any:
        from scancache.vulndb.ratelimit import RedisWindowLimiter, SlidingWindowLimiter

        cfg = self.config
        limit, window = int(cfg.nvd_rate_limit or 5), cfg.nvd_rate_window_seconds
        if cfg.cache_type in (CacheType.REDIS, CacheType.HYBRID) and cfg.redis_url:
            return RedisWindowLimiter(cfg.redis_url, f"scancache:{cfg.namespace}:nvd-rate", limit,
                                      window, clock=self.clock, sleep=self.sleep)
        return SlidingWindowLimiter(limit, window, clock=self.clock, sleep=self.sleep)

    @property
    def mirror(self) -> OSVMirror | None:
        """The offline OSVMirror answering queries, or None when none is configured."""
        if self._mirror is None and self._mirror_arg is not None:
            from scancache.vulndb.mirror import OSVMirror

            arg = self._mirror_arg
            self._mirror = arg if isinstance(arg, OSVMirror) else OSVMirror(arg, create=False)
        return self._mirror

    # ------------------------------------------------------------------ TTL policy
    def _query_ttl(self, value: dict[str, Any]) -> float:
        empty = not value.get("ids") and not value.get("records")
        return min(self.config.negative_ttl_seconds, self.config.ttl_seconds) if empty else \
            self.config.ttl_seconds

    # ------------------------------------------------------------------ keys
    def _query_key(self, q: Query) -> str:
        """The cache key of q's answer: its kind's upstream(s), then the canonical query's hash."""
        return self._prefixes[q.kind] + q.key

    # ------------------------------------------------------------------ single queries
    async def query_vulnerability_db(self, query: dict[str, Any] | Query) -> VulnResult:
        """The OSV records answering query (see scancache.vulndb.query for its fields).

        Cost: a cache hit is one or two cache reads; a miss is one OSV request per result page (plus
        NVD requests for CVEs OSV lacks). Concurrent identical queries share one fetch. Raises
        ValueError for an invalid query, VulnDBError when the API fails and no stale answer exists.
        Malformed advisories are left out and listed in the result's `skipped`.
        """
        q = parse_query(query)
        if self.mirror is not None and q.kind != "nvd":
            self.counters["mirror_answers"] += 1
            records, skipped = self.mirror.query_checked(q)
            return VulnResult(records, source="mirror", skipped=skipped)
        key = self._query_key(q)
        result: VulnResult = await self.cache.acoalesce(("vulndb-query", key), lambda: self._answer(q, key))
        return result

    async def _answer(self, q: Query, key: str) -> VulnResult:
        entry = await self.cache.aget_entry(key, allow_stale=True)
        if entry is not None and not entry.is_stale:
            answer = await self._records_for(entry.value, stale_ok=False)
            if answer is not None:
                return VulnResult(answer[0], source="cache", skipped=answer[1])
        try:
            return await self._fetch(q, key)
        except VulnDBError:
            if entry is not None:
                answer = await self._records_for(entry.value, stale_ok=True)
                if answer is not None:
                    self.counters["stale_served"] += 1
                    return VulnResult(answer[0], source="cache", stale=True)
            raise

    async def _fetch(self, q: Query, key: str) -> VulnResult:
        osv, nvd = self._clients()
        if q.kind in ("package", "commit"):
            records, skipped = self._records.checked(await osv.query(q.osv_body()))
        elif q.kind == "cve":
            fetched, skipped = await self._records.fetch(
                [q.cve_id], listed=False)  # type: ignore[list-item]  # set for "cve"
            records = list(fetched.values())
            if not records and not skipped:
                nvd_record = await nvd.get_cve(q.cve_id)
                value = {"records": [nvd_record] if nvd_record else []}
                await self.cache.aset(key, value, self._query_ttl(value))
                return VulnResult(value["records"], source="nvd")
        else:
            params = {"cpeName": q.cpe} if q.cpe else {}
            if q.keyword:
                params["keywordSearch"] = q.keyword
            value = {"records": _dedupe(await nvd.search(params))}
            await self.cache.aset(key, value, self._query_ttl(value))
            return VulnResult(value["records"], source="nvd")
        records = _dedupe(records)
        await self._records.store(records)
        if not skipped:  # an answer missing a skipped advisory must not be served later as whole
            value = {"ids": [[r["id"], r["modified"]] for r in records]}
            await self.cache.aset(key, value, self._query_ttl(value), compress=False)
        return VulnResult(records, source="osv", skipped=list(skipped.items()))

    async def _records_for(self, value: Any, *, stale_ok: bool
                           ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]] | None:
        """(records, skipped advisories) a cached query answer names; missing or outdated records
        are fetched (unless stale_ok, when only cached ones are used). None if the answer cannot be
        rebuilt."""
        if not isinstance(value, dict):
            return None
        if "records" in value:
            return list(value["records"]), []
        wanted = wanted_ids((value,))
        found = await self._records.cached(wanted, stale_ok=stale_ok)
        if stale_ok:
            return ([found[i] for i in wanted], []) if len(found) == len(wanted) else None
        fetched, skipped = await self._records.fetch([i for i in wanted if i not in found])
        found.update(fetched)
        return [found[i] for i in wanted if i in found], list(skipped.items())

    # ------------------------------------------------------------------ many queries
    def query_many_cached(self, queries: Iterable[dict[str, Any] | Query]) -> list[VulnResult] | None:
        """query_many's answers when the cache holds every one, fresh, with every record it names
        current; else None (then query_many asks OSV for what is missing). No request, no event loop:
        a warm audit answers this way without importing asyncio or an HTTP client.

        Cost: one cache get_many for the questions and one for the records. A mirror, an answer
        past its TTL or a record outdated or gone: None. Raises ValueError for an invalid query.
        """
        cached = self._cached_answers(queries)
        if cached is None:
            return None
        keys, values = cached
        wanted = wanted_ids(values.values())
        found = self._records.cached_now(wanted)
        if len(found) < len(wanted):
            return None
        answers = self._answers(values, {}, found, {})
        return [answers[k] for k in keys]

    def cached_answer_ids(self, queries: Iterable[dict[str, Any] | Query]
                          ) -> list[list[tuple[str, str]]] | None:
        """[(record id, modified), ...] per query, as OSV answered it, when the cache holds every
        answer fresh; else None. One get_many and no record read: what a caller that derived
        something from those records before (see derived()) needs to find it again."""
        cached = self._cached_answers(queries)
        if cached is None:
            return None
        keys, values = cached
        out = []
        for key in keys:
            pairs = values[key].get("ids")
            if not isinstance(pairs, list) or "records" in values[key]:
                return None
            out.append([(str(i), str(m)) for i, m in pairs])
        return out

    def _cached_answers(self, queries: Iterable[dict[str, Any] | Query]
                        ) -> tuple[list[str], dict[str, dict[str, Any]]] | None:
        """(cache key per query, {key: answer}) when every answer is cached and fresh; else None."""
        parsed = [parse_query(q) for q in queries]
        if self.mirror is not None:
            return None
        keys = [self._query_key(q) for q in parsed]
        values = self.cache.get_many(dict.fromkeys(keys))
        if len(values) < len(set(keys)) or not all(isinstance(v, dict) for v in values.values()):
            return None
        return keys, values

    def derived(self, keys: Iterable[str]) -> dict[str, Any]:
        """{key: value} stored by store_derived and still fresh (one get_many). For values that
        are a pure function of records identified by their (id, modified): the caller puts those
        in the key, so a changed record is a different key, never a stale value."""
        prefix = self._derived_prefix
        cut = len(prefix)
        return {k[cut:]: v for k, v in self.cache.get_many([prefix + k for k in keys]).items()}

    def store_derived(self, values: dict[str, Any]) -> None:
        """Store {key: value} for derived() (one set_many), for as long as records live."""
        if values:
            prefix = self._derived_prefix
            self.cache.set_many({prefix + k: v for k, v in values.items()}, self.config.ttl_seconds,
                                compress=False)

    async def astore_derived(self, values: dict[str, Any]) -> None:
        """store_derived from a coroutine (the event loop never waits on a locked file)."""
        if values:
            prefix = self._derived_prefix
            await self.cache.aset_many({prefix + k: v for k, v in values.items()},
                                       self.config.ttl_seconds, compress=False)

    def _answers(self, fresh: dict[str, Any], new_values: dict[str, Any],
                 found: dict[str, dict[str, Any]], skipped: dict[str, str]) -> dict[str, VulnResult]:
        """{cache key: VulnResult} for the answers in fresh (new_values: those OSV just gave), their
        records taken from found: what query_many and query_many_cached share."""
        answers: dict[str, VulnResult] = {}
        for key, value in fresh.items():
            if "records" in value:
                answers[key] = VulnResult(value["records"], source="cache")
            else:
                ids = [i for i, _ in value.get("ids") or ()]
                answers[key] = VulnResult([found[i] for i in ids if i in found],
                                          source="osv" if key in new_values else "cache",
                                          skipped=[(i, skipped[i]) for i in ids if i in skipped])
        return answers

    async def query_many(self, queries: Iterable[dict[str, Any] | Query], *,
                         progress: Progress | None = None) -> list[VulnResult]:
        """Answers for many queries, in order, with as few requests as OSV allows.

        progress(done, total) follows the long part of a cold run, the record fetches.

        Cost: one cache get_many for the questions and one for the records; then one
        /v1/querybatch per osv_batch_size questions not cached (osv_concurrency at a time), then
        the distinct records not cached or outdated: one /v1/query (paged) per package answer that
        names two or more of them, one GET for each of the rest (RecordStore.fetch); so a cold
        300-pin audit sends 1 + 73 + 134 requests, not 1 + 517. cve/cpe/keyword queries run one by
        one.
        Raises ValueError for any invalid query (before any request), VulnDBError as above.
        Malformed advisories are left out of each answer and listed in its `skipped`.
        """
        import asyncio

        parsed = [parse_query(q) for q in queries]
        if self.mirror is not None:  # offline: the mirror answers all but NVD searches
            return list(await asyncio.gather(*(self.query_vulnerability_db(q) for q in parsed)))
        keys = [self._query_key(q) for q in parsed]
        unique = dict(zip(keys, parsed, strict=True))
        values = await self.cache.aget_many(unique)
        missing = [(k, q) for k, q in unique.items() if k not in values]
        batchable = [(k, q) for k, q in missing if q.kind in ("package", "commit")]
        singles = [q for _, q in missing if q.kind not in ("package", "commit")]
        new_values, stale_keys = await self._batch(batchable)
        single_answers = await asyncio.gather(*(self.query_vulnerability_db(q) for q in singles))
        fresh = {**values, **new_values}
        wanted = wanted_ids(fresh.values())  # one get_many for every record any answer names
        found = await self._records.cached(wanted, stale_ok=False)
        skipped: dict[str, str] = {}
        if len(found) < len(wanted):
            absent = [i for i in wanted if i not in found]
            fetched, skipped = await self._records.fetch(
                absent, progress, groups=_package_groups(fresh, unique, set(absent)))
            found.update(fetched)
        positive = {k: v for k, v in new_values.items() if v["ids"]}
        negative = {k: v for k, v in new_values.items() if not v["ids"]}
        for group in (positive, negative):
            if group:
                await self.cache.aset_many(group, self._query_ttl(next(iter(group.values()))),
                                           compress=False)
        answers = self._answers(fresh, new_values, found, skipped)
        for q, result in zip(singles, single_answers, strict=True):
            answers[self._query_key(q)] = result
        for key, records in stale_keys.items():
            answers[key] = VulnResult(records, source="cache", stale=True)
        return [answers[k] for k in keys]

    async def _batch(self, queries: list[tuple[str, Query]]
                     ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Ask querybatch for (cache key, query) pairs in chunks: ({key: fresh value}, {key: the
        records of a stale answer standing in}). A stand-in's records are kept as checked here (all
        present), not looked up again later: the run's own writes may push them out of a bounded
        cache meanwhile, and a lookup that then found none would read as "no advisory"."""
        if not queries:
            return {}, {}
        import asyncio

        osv, _ = self._clients()
        size = self.config.osv_batch_size
        chunks = [queries[i:i + size] for i in range(0, len(queries), size)]
        results = await asyncio.gather(*(osv.querybatch([q.osv_body() for _, q in chunk])
                                         for chunk in chunks), return_exceptions=True)
        fresh: dict[str, Any] = {}
        stale: dict[str, list[dict[str, Any]]] = {}
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, VulnDBError):
                    raise result
                for key, _ in chunk:  # the API failed: a stale answer may stand in, else give up
                    entry = await self.cache.aget_entry(key, allow_stale=True)
                    answer = None if entry is None else await self._records_for(entry.value, stale_ok=True)
                    if answer is None:
                        raise result
                    self.counters["stale_served"] += 1
                    stale[key] = answer[0]
                continue
            for (key, _), pairs in zip(chunk, result, strict=True):
                fresh[key] = {"ids": [list(p) for p in dict.fromkeys(pairs)]}
        return fresh, stale

    # ------------------------------------------------------------------ audit, stats, lifecycle
    async def audit(self, requirements: Any, *, progress: Progress | None = None) -> AuditReport:
        """Audit a pinned requirements file (path, text or lines): see scancache.vulndb.audit."""
        from scancache.vulndb.audit import audit_requirements

        return await audit_requirements(self, requirements, progress=progress)

    def get_stats(self) -> dict[str, Any]:
        """Cache stats (hits, misses, hit_rate, size ...) plus requests per endpoint and retries."""
        stats = self.cache.get_stats()
        requests = dict(self._json.requests) if self._json is not None else {}
        stats["requests"] = requests
        stats["requests_total"] = sum(requests.values())
        stats["retries"] = sum(self._json.retries.values()) if self._json is not None else 0
        stats["nvd_rate_waits"] = getattr(self._limiter, "waits", 0)
        stats.update(self.counters)
        return stats

    async def aclose(self) -> None:
        """Close the HTTP client (if ours), the Redis limiter, the mirror and the cache (if ours)."""
        if self._transport is not None:  # closes only a session it opened itself
            await self._transport.aclose()
            self._transport = None
            self._osv = None
        if hasattr(self._limiter, "aclose"):
            await self._limiter.aclose()
        if self._mirror is not None and self._mirror is not self._mirror_arg:
            self._mirror.close()
        if self._owns_cache:
            await self.cache.aclose()

    def close(self) -> None:
        """aclose() without an event loop, for an instance that sent no request (one answered by
        query_many_cached): closes the mirror and the cache (if ours). RuntimeError once a request
        was sent (the HTTP client and a Redis limiter close only with `await aclose()`)."""
        if self._transport is not None or hasattr(self._limiter, "aclose"):
            raise RuntimeError("this VulnerabilityDBCache sent requests: close it with `await aclose()`")
        if self._mirror is not None and self._mirror is not self._mirror_arg:
            self._mirror.close()
        if self._owns_cache:
            self.cache.close()

    async def __aenter__(self) -> VulnerabilityDBCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _source_tag(*parts: str) -> str:
    """A short, stable name for the upstream(s) an answer came from (a part of its cache key)."""
    return sha256_hex("\n".join(parts).encode())[:16]


def _package_groups(answers: dict[str, Any], queries: dict[str, Query], missing: set[str]
                    ) -> list[tuple[dict[str, Any], list[str]]]:
    """(OSV query body, missing ids) for each package answer that lists at least two missing ids:
    one /v1/query brings them all (RecordStore.fetch), where a GET would bring one. Each id goes in
    one group at most; ids left out are fetched one GET each."""
    groups: list[tuple[dict[str, Any], list[str]]] = []
    taken: set[str] = set()
    for key, value in answers.items():
        q = queries.get(key)
        if q is None or q.kind != "package" or not isinstance(value, dict):
            continue
        ids = list(dict.fromkeys(str(pair[0]) for pair in value.get("ids") or ()
                                 if str(pair[0]) in missing and str(pair[0]) not in taken))
        if len(ids) >= 2:
            groups.append((q.osv_body(), ids))
            taken.update(ids)
    return groups


def _dedupe(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        seen.setdefault(record["id"], record)
    return list(seen.values())

