"""RecordStore: OSV records by id in the cache core, fetched once, checked before use, reused while current.

`v:<source>:<id>` -> the full record. A record is stored only after scancache.vulndb.records found
it well formed; a malformed one is skipped with one warning naming its id (and never stored). A
record is current while its `modified` is the one OSV reports (the batch answer carries it); one past
its TTL but still current is reused from its stale window and stored again rather than refetched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from scancache._log import get_logger
from scancache.cache.core import Cache
from scancache.errors import VulnDBError
from scancache.vulndb.records import record_label, record_problem
from scancache.vulndb.result import is_newer

__all__ = ["RecordStore", "wanted_ids"]

log = get_logger("scancache.vulndb")
#: Stale copies probed before a cold run gives up looking for reusable records (see _reused).
_STALE_PROBE = 8
#: A cold run's records are stored in batches of at most this many, or what arrived in this many
#: seconds (RecordStore.fetch's write-behind).
_WRITE_BATCH = 256
_WRITE_DELAY = 0.02
#: progress(done, total): called as long work advances (a CLI draws a bar with it).
Progress = Callable[[int, int], None]


class RecordStore:
    """The records of one OSV source (prefix names it) in cache; osv_client() builds the OSV client
    when a fetch needs it; counters (shared with the owner) count fetched, reused, skipped, stale."""

    def __init__(self, cache: Cache, prefix: str, ttl_seconds: float, osv_client: Callable[[], Any],
                 counters: dict[str, int]) -> None:
        self.cache = cache
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.osv_client = osv_client
        self.counters = counters

    def checked(self, records: list[Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """(usable records, {id: reason} for the malformed ones, each warned about once)."""
        good, skipped = [], {}
        for record in records:
            problem = record_problem(record)
            if problem is None:
                good.append(record)
            else:
                skipped[record_label(record)] = problem
        self.warn_skipped(skipped)
        return good, skipped

    def warn_skipped(self, skipped: dict[str, str]) -> None:
        for vuln_id, reason in skipped.items():
            log.warning("advisory %s skipped (malformed, not cached): %s", vuln_id, reason)
        self.counters["records_skipped"] += len(skipped)

    async def store(self, records: list[dict[str, Any]]) -> None:
        if records:
            prefix = self.prefix
            await self.cache.aset_many({prefix + r["id"]: r for r in records}, self.ttl_seconds)

    async def cached(self, wanted: dict[str, str], *, stale_ok: bool
                              ) -> dict[str, dict[str, Any]]:
        """{id: record} for wanted ids ({id: modified}) cached and at least as new as asked for.

        Cost: one cache get_many (stale_ok: one read per id, stale entries included); ids it
        misses are looked for in their stale window (see _reused).
        """
        found = {}
        prefix = self.prefix
        if stale_ok:
            for vuln_id in wanted:
                entry = await self.cache.aget_entry(prefix + vuln_id, allow_stale=True)
                if entry is not None:
                    found[vuln_id] = entry.value
            return found
        found = self._current(wanted, await self.cache.aget_many([prefix + i for i in wanted]))
        if len(found) < len(wanted):
            found.update(await self._reused({i: m for i, m in wanted.items() if i not in found}))
        return found

    def cached_now(self, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
        """cached(wanted, stale_ok=False) without an event loop and without the stale window: the
        fresh, current records only (a warm run answered from the cache alone). Cost: one get_many."""
        return self._current(wanted, self.cache.get_many([self.prefix + i for i in wanted]))

    def _current(self, wanted: dict[str, str], cached: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """{id: record} among cached ({key: value} as get_many answers) at least as new as wanted
        ({id: modified}) asks for: what cached() and cached_now() share."""
        found = {}
        cut = len(self.prefix)
        for key, record in cached.items():
            vuln_id = key[cut:]
            if not isinstance(record, dict):
                continue  # not a record (a foreign writer): fetch it again
            modified, have = wanted[vuln_id], record.get("modified", "")
            if modified == have or not is_newer(modified, str(have)):
                found[vuln_id] = record
        return found

    async def _reused(self, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Records past their TTL whose `modified` is still the one OSV reports: as good as a fresh
        fetch, so they are stored again instead of fetched (an answer and its records expire
        together; without this every expiry would refetch every record).

        Cost: one read per id; a cold cache is detected after _STALE_PROBE misses and not read on.
        """
        import asyncio

        prefix = self.prefix
        ids = list(wanted)
        found: dict[str, dict[str, Any]] = {}
        for start, stop in ((0, _STALE_PROBE), (_STALE_PROBE, len(ids))):
            chunk = ids[start:stop]
            entries = await asyncio.gather(*(self.cache.aget_entry(prefix + i, allow_stale=True)
                                             for i in chunk))
            for vuln_id, entry in zip(chunk, entries, strict=True):
                if entry is not None and isinstance(entry.value, dict) \
                        and entry.value.get("modified") == wanted[vuln_id]:
                    found[vuln_id] = entry.value
            if not found:
                break  # nothing in the stale window: a cold cache, do not read on
        if found:
            self.counters["records_reused"] += len(found)
            await self.store(list(found.values()))
        return found

    async def fetch(self, ids: list[str], progress: Progress | None = None, *,
                    groups: Sequence[tuple[dict[str, Any], list[str]]] = (), listed: bool = True
                    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """({id: record}, {id: reason skipped}): GET /v1/vulns/{id} once per id (distinct ids;
        concurrently, bounded). Stale copies stand in for failures; a malformed record (or an
        answer that was never a record) is skipped with a warning; raises VulnDBError when the API
        fails and no stale copy exists. progress(done, len(ids)) is called as ids are settled.

        groups: (OSV query body, ids its package's batch answer listed) pairs, each id
        in one group at most. A group's records come from one /v1/query for the package (full
        records, every page followed) instead of one GET each: a cold 1,000-pin audit asks 176
        queries and 277 GETs instead of 1,875 GETs. Only a well-formed record whose own id the
        group lists is taken from that answer; every listed id it does not deliver so (missing,
        malformed, a garbled answer or a 404) is asked with its own GET and judged as above; a
        query that failed otherwise fails its ids as their GETs would have.

        listed: the ids come from an OSV answer that named them, so a 404 for one is skipped (the
        package's status is unknown), never dropped: dropped, it read as "no advisory" on every run
        that reused the cached answer. A lookup by id (a cve_id query) passes False: its 404 means
        "ask NVD".

        Each record is checked as its answer arrives and, when well formed and named by its own id,
        handed to the cache's write-behind: encoded while other GETs are in flight and stored in
        batches off the event loop (one aset_many after the last GET put 20-70 ms of encoding and
        SQLite on the critical path of a cold 300-pin audit). Records fetched before a failure are
        stored too: each was checked on its own.
        """
        if not ids:
            return {}, {}
        import asyncio

        from scancache.vulndb.http import MalformedAnswer

        osv = self.osv_client()
        prefix, ttl, total = self.prefix, self.ttl_seconds, len(ids)
        good: dict[str, dict[str, Any]] = {}
        bad: dict[str, str] = {}
        errors: dict[str, VulnDBError] = {}
        done = 0
        if progress is not None:
            progress(0, total)

        def settled(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, total)

        async def get(vuln_id: str) -> None:
            try:
                answer = await osv.get_vuln(vuln_id)
            except VulnDBError as exc:
                errors[vuln_id] = exc
                return
            finally:
                settled(1)
            if answer is None:  # a 404: gone since the answer listed it, or a lying upstream
                if listed:
                    bad[vuln_id] = "listed by OSV's answer, but its record was not found (HTTP 404)"
                return
            problem = record_problem(answer)
            if problem is not None:
                bad[vuln_id] = problem
                return
            good[vuln_id] = answer
            if answer.get("id") == vuln_id:  # an alias's answer is not stored under the alias
                writes.put(prefix + vuln_id, answer, ttl)

        async def ask_package(body: dict[str, Any], listed: list[str]) -> None:
            wanted = set(listed)
            try:
                records = await osv.query(body)
            except VulnDBError as exc:
                if not isinstance(exc, MalformedAnswer) and exc.status != 404:
                    # The API is failing (or the answer was too large): as if each GET had failed
                    # so, stale copies stand in below, else the run fails; asking again is no use.
                    for listed_id in listed:
                        errors[listed_id] = exc
                    settled(len(listed))
                    return
                records = []  # a garbled answer, or no /v1/query: each id is asked on its own below
            for record in records:
                record_id = record.get("id") if isinstance(record, dict) else None
                if (isinstance(record_id, str) and record_id in wanted and record_id not in good
                        and record_problem(record) is None):
                    wanted.discard(record_id)
                    good[record_id] = record
                    writes.put(prefix + record_id, record, ttl)
            settled(len(listed) - len(wanted))
            await asyncio.gather(*(get(i) for i in listed if i in wanted))

        asked = set(ids)
        packages = [(body, [i for i in listed if i in asked]) for body, listed in groups]
        grouped = {i for _, listed in packages for i in listed}
        async with self.cache.write_behind(max_items=_WRITE_BATCH, max_delay=_WRITE_DELAY) as writes:
            asks = [ask_package(body, listed) for body, listed in packages if listed]
            asks += [get(i) for i in ids if i not in grouped]
            outcomes = await asyncio.gather(*asks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        fetched: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        failed: list[VulnDBError] = []
        for vuln_id in ids:  # in the order asked, whatever order the answers came in
            if vuln_id in good:
                fetched[vuln_id] = good[vuln_id]
                self.counters["records_fetched"] += 1
            elif vuln_id in bad:
                skipped[vuln_id] = bad[vuln_id]
            elif vuln_id in errors:
                error = errors[vuln_id]
                entry = await self.cache.aget_entry(prefix + vuln_id, allow_stale=True)
                if entry is not None:
                    self.counters["stale_served"] += 1
                    fetched[vuln_id] = entry.value
                elif isinstance(error, MalformedAnswer):
                    skipped[vuln_id] = error.reason
                else:
                    failed.append(error)
        if failed:
            raise failed[0]
        self.warn_skipped(skipped)
        return fetched, skipped


def wanted_ids(values: Iterable[Any]) -> dict[str, str]:
    """{record id: modified} named by cached OSV answers ({"ids": [[id, modified], ...]}), each id
    once; an id named twice with different stamps keeps the newer (so an outdated copy is refetched)."""
    wanted: dict[str, str] = {}
    for value in values:
        if not isinstance(value, dict):
            continue
        for vuln_id, modified in value.get("ids") or ():
            vuln_id, modified = str(vuln_id), str(modified)
            known = wanted.setdefault(vuln_id, modified)
            if known != modified and is_newer(modified, known):
                wanted[vuln_id] = modified
    return wanted
