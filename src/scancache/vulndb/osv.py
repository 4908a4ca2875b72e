"""OSV API v1 client: /v1/query (paged), /v1/querybatch (paged per query), /v1/vulns/{id}.

Every answer's envelope is shape-checked before anyone sees it, so a garbled body becomes a retry
and, at worst, a VulnDBError (MalformedAnswer when the body itself was the problem); it can never
reach the cache. The records inside are checked by scancache.vulndb.records, where the cache decides
what to do with a bad one (skip it, with a warning).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from scancache.cache.urls import join_url_path, redact_url
from scancache.errors import VulnDBError
from scancache.vulndb.http import JSONClient, Malformed
from scancache.vulndb.records import record_label, record_problem

__all__ = ["OSVClient", "check_record"]

#: Pages followed per query before giving up (a server that never stops paging is broken).
MAX_PAGES = 1000


def check_record(record: Any) -> None:
    """Raise Malformed unless record is a usable OSV record (scancache.vulndb.records decides)."""
    problem = record_problem(record)
    if problem is not None:
        raise Malformed(f"record {record_label(record)}: {problem}")


def _check_page(data: Any, *, full: bool) -> None:
    if not isinstance(data, dict):
        raise Malformed(f"expected an object, got {type(data).__name__}")
    vulns = data.get("vulns", [])
    if not isinstance(vulns, list):
        raise Malformed("'vulns' must be a list")
    token = data.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise Malformed("'next_page_token' must be a string")
    if full:
        return  # full records: the cache checks each one and skips (and reports) the bad ones
    for vuln in vulns:
        if not isinstance(vuln, dict) or not isinstance(vuln.get("id"), str) or not vuln["id"]:
            raise Malformed("a batch result entry lacks its 'id'")


def _check_batch(count: int) -> Callable[[Any], None]:
    def check(data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise Malformed("expected an object with a 'results' list")
        if len(data["results"]) != count:
            raise Malformed(f"asked {count} queries, got {len(data['results'])} results")
        for result in data["results"]:
            _check_page(result, full=False)
    return check


class OSVClient:
    """Talks to one OSV base URL (https://api.osv.dev or a loopback test server).

    The API paths go after the base URL's path and before its query (a proxy's `?token=`), and
    errors name the endpoint with its credentials redacted (they end up in reports and CI logs).
    """

    def __init__(self, http: JSONClient, base_url: str, *, concurrency: int = 10) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.semaphore = asyncio.Semaphore(concurrency)

    def _url(self, path: str) -> str:
        return join_url_path(self.base_url, path)

    async def query(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Full records matching one query, every page followed. Raises VulnDBError."""
        url = self._url("/v1/query")
        records: list[dict[str, Any]] = []
        page_body = dict(body)
        for _ in range(MAX_PAGES):
            async with self.semaphore:
                data = await self.http.request("osv_query", "POST", url, json=page_body,
                                               check=lambda d: _check_page(d, full=True))
            if data is None:  # 404 on /v1/query: the server has no such endpoint
                raise VulnDBError(f"POST {redact_url(url)}", "HTTP 404", 404)
            records.extend(data.get("vulns", []))
            token = data.get("next_page_token")
            if not token:
                return records
            page_body = {**body, "page_token": token}
        raise VulnDBError(f"POST {redact_url(url)}", f"more than {MAX_PAGES} pages")

    async def querybatch(self, bodies: Sequence[dict[str, Any]]) -> list[list[tuple[str, str]]]:
        """[(id, modified), ...] per query, in order; pages of each query followed in later calls."""
        url = self._url("/v1/querybatch")
        results: list[list[tuple[str, str]]] = [[] for _ in bodies]
        pending = list(range(len(bodies)))
        tokens: dict[int, str] = {}
        for _ in range(MAX_PAGES):
            if not pending:
                return results
            batch = [{**bodies[i], "page_token": tokens[i]} if i in tokens else bodies[i]
                     for i in pending]
            async with self.semaphore:
                data = await self.http.request("osv_querybatch", "POST", url,
                                               json={"queries": batch}, check=_check_batch(len(batch)))
            if data is None:
                raise VulnDBError(f"POST {redact_url(url)}", "HTTP 404", 404)
            still = []
            for index, answer in zip(pending, data["results"], strict=True):
                for vuln in answer.get("vulns", []):
                    results[index].append((vuln["id"], str(vuln.get("modified", ""))))
                token = answer.get("next_page_token")
                if token:
                    tokens[index] = token
                    still.append(index)
            pending = still
        raise VulnDBError(f"POST {redact_url(url)}", f"more than {MAX_PAGES} pages")

    async def get_vuln(self, vuln_id: str) -> dict[str, Any] | None:
        """The answer for one id, or None when OSV does not know the id (404).

        Only checked to be an object naming vuln_id (as its id or an alias); the caller checks the
        record's shape. Raises VulnDBError (MalformedAnswer when every answer was garbled)."""
        from urllib.parse import quote

        url = self._url(f"/v1/vulns/{quote(vuln_id, safe='')}")

        def check(data: Any) -> None:
            if not isinstance(data, dict):
                raise Malformed(f"a record must be an object, got {type(data).__name__}")
            aliases = data.get("aliases")
            if data.get("id") != vuln_id and not (isinstance(aliases, list) and vuln_id in aliases):
                raise Malformed(f"asked for {vuln_id}, got {record_label(data)}")

        async with self.semaphore:
            return await self.http.request("osv_vulns", "GET", url, check=check)
