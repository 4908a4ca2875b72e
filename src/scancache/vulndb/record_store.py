"""RecordStore: OSV records by id in the cache core, fetched once, checked before use, reused while current.

`v:<source>:<id>` -> the full record. A record is stored only after scancache.vulndb.records found
it well formed; a malformed one is skipped with one warning naming its id (and never stored). A
record is current while its `modified` is the one OSV reports (the batch answer carries it); one past
its TTL but still current is reused from its stale window and stored again rather than refetched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from scancache.cache.core import Cache
from scancache.errors import VulnDBError
from scancache.vulndb.records import record_label, record_problem
from scancache.vulndb.result import is_newer

__all__ = ["RecordStore", "wanted_ids"]

log = logging.getLogger("scancache.vulndb")
#: Stale copies probed before a cold run gives up looking for reusable records (see _reused).
_STALE_PROBE = 8
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
        cut = len(prefix)
        cached = await self.cache.aget_many([prefix + i for i in wanted])
        for key, record in cached.items():
            vuln_id = key[cut:]
            if not isinstance(record, dict):
                continue  # not a record (a foreign writer): fetch it again
            modified, have = wanted[vuln_id], record.get("modified", "")
            if modified == have or not is_newer(modified, str(have)):
                found[vuln_id] = record
        if len(found) < len(wanted):
            found.update(await self._reused({i: m for i, m in wanted.items() if i not in found}))
        return found

    async def _reused(self, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Records past their TTL whose `modified` is still the one OSV reports: as good as a fresh
        fetch, so they are stored again instead of fetched (an answer and its records expire
        together; without this every expiry would refetch every record).

        Cost: one read per id; a cold cache is detected after _STALE_PROBE misses and not read on.
        """
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

    async def fetch(self, ids: list[str], progress: Progress | None = None
                             ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """({id: record}, {id: reason skipped}): GET /v1/vulns/{id} once per id (distinct ids;
        concurrently, bounded). Stale copies stand in for failures; a malformed record (or an
        answer that was never a record) is skipped with a warning; raises VulnDBError when the API
        fails and no stale copy exists. Stores what it fetched and checked.
        progress(done, len(ids)) is called as each GET finishes."""
        if not ids:
            return {}, {}
        from scancache.vulndb.http import MalformedAnswer

        osv = self.osv_client()
        get_vuln = osv.get_vuln
        if progress is not None:
            done = 0
            progress(0, len(ids))

            async def get_vuln(vuln_id: str) -> Any:
                nonlocal done
                try:
                    return await osv.get_vuln(vuln_id)
                finally:
                    done += 1
                    progress(done, len(ids))

        answers = await asyncio.gather(*(get_vuln(i) for i in ids), return_exceptions=True)
        fetched: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        failed: list[BaseException] = []
        for vuln_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, VulnDBError):
                    raise answer
                entry = await self.cache.aget_entry(self.prefix + vuln_id, allow_stale=True)
                if entry is not None:
                    self.counters["stale_served"] += 1
                    fetched[vuln_id] = entry.value
                elif isinstance(answer, MalformedAnswer):
                    skipped[vuln_id] = answer.reason
                else:
                    failed.append(answer)
            elif answer is not None:  # None: a 404, the record vanished since the batch listed it
                problem = record_problem(answer)
                if problem is not None:
                    skipped[vuln_id] = problem
                    continue
                fetched[vuln_id] = answer
                self.counters["records_fetched"] += 1
        if failed:
            raise failed[0]
        self.warn_skipped(skipped)
        await self.store([r for i, r in fetched.items() if r.get("id") == i])
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
