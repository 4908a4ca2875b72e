"""VulnerabilityDBCache against a loopback OSV/NVD server: caching, batching, TTLs, stale answers."""

from __future__ import annotations

import asyncio
import copy

import pytest

from scancache.config import CacheConfig, CacheType
from scancache.errors import VulnDBError
from scancache.testing.osv_server import OSVTestServer
from scancache.vulndb.cache import VulnerabilityDBCache, VulnResult
from scancache.vulndb.config import VulnDBConfig
from scancache.vulndb.query import parse_query

JINJA_24 = ["PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]


async def test_package_query_follows_pages_and_second_ask_is_free(vulndb, osv_server):
    result = await vulndb.query_vulnerability_db({"product": "jinja2", "version": "2.4",
                                                  "ecosystem": "PyPI"})
    assert isinstance(result, VulnResult) and isinstance(result, list)
    assert sorted(result.ids) == JINJA_24
    assert all(r["affected"] for r in result)  # full records, not ids
    assert osv_server.requests["/v1/query"] == 2  # 5 records, pages of 3
    again = await vulndb.query_vulnerability_db({"product": "Jinja2", "version": "2.4.0",
                                                 "ecosystem": "pypi"})
    assert again == result and again.source == "cache"
    assert osv_server.total_requests == 2
    stats = vulndb.get_stats()
    assert stats["requests"] == {"osv_query": 2} and stats["hits"] >= 1 and 0 < stats["hit_rate"] < 1


async def test_fixed_version_has_no_findings_and_is_cached_negatively(make_vulndb, osv_server, fake_clock):
    vulndb = make_vulndb(negative_ttl_seconds=60, ttl_seconds=3600, stale_ttl_seconds=0)
    query = {"purl": "pkg:pypi/jinja2@3.1.4"}
    assert await vulndb.query_vulnerability_db(query) == []
    assert await vulndb.query_vulnerability_db(query) == []
    assert osv_server.requests["/v1/query"] == 1
    fake_clock.advance(61)  # past negative_ttl, well within ttl_seconds
    assert await vulndb.query_vulnerability_db(query) == []
    assert osv_server.requests["/v1/query"] == 2


async def test_positive_answers_live_ttl_seconds(make_vulndb, osv_server, fake_clock):
    vulndb = make_vulndb(ttl_seconds=100, stale_ttl_seconds=0)
    query = {"package": "requests", "ecosystem": "PyPI", "version": "2.19.0"}
    first = await vulndb.query_vulnerability_db(query)
    assert "PYSEC-2018-28" in first.ids
    fake_clock.advance(99)
    await vulndb.query_vulnerability_db(query)
    assert osv_server.requests["/v1/query"] == 1
    fake_clock.advance(2)
    await vulndb.query_vulnerability_db(query)
    assert osv_server.requests["/v1/query"] == 2


async def test_concurrent_identical_queries_share_one_fetch(vulndb, osv_server):
    osv_server.inject("slow", count=1, path="/v1/query", delay=0.2)
    query = {"product": "urllib3", "ecosystem": "PyPI", "version": "1.24"}
    results = await asyncio.gather(*(vulndb.query_vulnerability_db(query) for _ in range(20)))
    assert all(r == results[0] for r in results) and results[0]
    pages = -(-len(results[0]) // 3)
    assert osv_server.requests["/v1/query"] == pages  # one fetch (its pages) for 20 callers
    assert vulndb.get_stats()["inflight_joined"] >= 1


async def test_query_many_batches_and_fetches_each_record_once(vulndb, osv_server):
    queries = [{"package": "jinja2", "ecosystem": "PyPI", "version": v}
               for v in ("2.4", "2.5", "2.6", "2.10", "3.1.4")]
    queries.append({"package": "requests", "ecosystem": "PyPI", "version": "2.19.0"})
    queries.append({"purl": "pkg:pypi/jinja2@2.4.0"})  # the same question as the first
    results = await vulndb.query_many(queries)
    assert sorted(results[0].ids) == JINJA_24 and results[6] == results[0]
    assert results[4] == [] and sorted(results[3].ids) == ["PYSEC-2019-217", "PYSEC-2021-66"]
    distinct = {i for r in results for i in r.ids}
    assert osv_server.requests["/v1/querybatch"] == 1
    assert vulndb.get_stats()["records_fetched"] == len(distinct)  # shared records fetched once
    # A package answer naming several records brings them with one /v1/query (paged by 3 here),
    # the others come one GET each: fewer requests than records.
    assert osv_server.requests["/v1/query"] >= 1
    assert osv_server.requests["/v1/query"] + osv_server.requests["/v1/vulns"] < len(distinct)
    osv_server.reset_counts()
    again = await vulndb.query_many(queries)
    assert again == results and osv_server.total_requests == 0


async def test_query_many_splits_at_batch_size_and_follows_batch_pages(make_vulndb, osv_records):
    from scancache.testing.osv_server import OSVTestServer

    with OSVTestServer(osv_records, batch_page_size=2) as server:
        vulndb = make_vulndb(server=server, osv_batch_size=2, osv_concurrency=2)
        queries = [{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"},
                   {"package": "django", "ecosystem": "PyPI", "version": "1.11"},
                   {"package": "flask", "ecosystem": "PyPI", "version": "0.12"}]
        results = await vulndb.query_many(queries)
        direct = [server.match(q | {"package": {"name": q["package"], "ecosystem": "PyPI"}})
                  for q in queries]
        assert [sorted(r.ids) for r in results] == [sorted(r["id"] for r in d) for d in direct]
        pages = -(-len(direct[0]) // 2)  # jinja2 alone needs this many batch pages
        assert server.requests["/v1/querybatch"] >= 2 + (pages - 1)
        assert len(direct[1]) > 2  # django 1.11: several pages, so paging was exercised


async def test_record_refetched_only_when_modified_is_newer(vulndb, osv_server, osv_records):
    queries = [{"package": "requests", "ecosystem": "PyPI", "version": "2.0.0"}]
    first = await vulndb.query_many(queries)
    assert "PYSEC-2014-13" in first[0].ids
    fetched = osv_server.requests["/v1/vulns"]
    newer = copy.deepcopy(osv_records["PYSEC-2014-13"])
    newer["modified"] = "2030-01-01T00:00:00Z"
    newer["summary"] = "updated upstream"
    osv_server.set_record(newer)
    # the question expires, records stay
    await vulndb.cache.adelete(vulndb._query_key(parse_query(queries[0])))
    second = await vulndb.query_many(queries)
    assert osv_server.requests["/v1/vulns"] == fetched + 1  # only the changed record
    assert next(r for r in second[0] if r["id"] == "PYSEC-2014-13")["summary"] == "updated upstream"


async def test_stale_answer_served_when_api_down(make_vulndb, osv_server, fake_clock):
    vulndb = make_vulndb(ttl_seconds=60, stale_ttl_seconds=3600, max_retries=1)
    query = {"product": "jinja2", "version": "2.4", "ecosystem": "PyPI"}
    fresh = await vulndb.query_vulnerability_db(query)
    fake_clock.advance(120)  # expired, inside the stale window
    osv_server.inject("503", count=100)
    stale = await vulndb.query_vulnerability_db(query)
    assert stale == fresh and stale.stale and vulndb.get_stats()["stale_served"] == 1
    fake_clock.advance(7200)  # past the stale window too: the error surfaces
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_vulnerability_db(query)
    assert "/v1/query" in info.value.endpoint and info.value.status == 503


async def test_query_many_serves_stale_when_batch_fails(make_vulndb, osv_server, fake_clock):
    vulndb = make_vulndb(ttl_seconds=60, stale_ttl_seconds=3600, max_retries=0)
    queries = [{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}]
    fresh = await vulndb.query_many(queries)
    fake_clock.advance(120)
    osv_server.inject("503", count=100)
    stale = await vulndb.query_many(queries)
    assert stale == fresh and stale[0].stale
    with pytest.raises(VulnDBError):
        await vulndb.query_many([{"package": "flask", "ecosystem": "PyPI", "version": "0.1"}])


async def test_cve_query_falls_back_to_nvd_and_is_cached(vulndb, osv_server):
    result = await vulndb.query_vulnerability_db({"cve_id": "CVE-2014-1402"})
    assert result.ids == ["CVE-2014-1402"] and result.source == "nvd"
    assert result[0]["database_specific"]["source"] == "nvd"
    assert "bccache" in result[0]["details"]
    assert osv_server.requests["/v1/vulns"] == 1 and osv_server.requests["/rest/json/cves/2.0"] == 1
    await vulndb.query_vulnerability_db({"cve_id": "cve-2014-1402", "product": "jinja2"})
    assert osv_server.total_requests == 2


async def test_cve_query_prefers_osv_record(vulndb, osv_server, osv_records):
    record = copy.deepcopy(osv_records["PYSEC-2014-8"])
    record.update(id="CVE-2014-1402", aliases=["PYSEC-2014-8"])
    osv_server.set_record(record)
    result = await vulndb.query_vulnerability_db({"cve_id": "CVE-2014-1402"})
    assert result.ids == ["CVE-2014-1402"] and result.source == "osv"
    assert osv_server.requests["/rest/json/cves/2.0"] == 0


async def test_seed_examples_with_environment(monkeypatch, osv_server):
    monkeypatch.setenv("SCANCACHE_OSV_URL", osv_server.url)
    monkeypatch.setenv("SCANCACHE_NVD_URL", osv_server.nvd_url)
    config = CacheConfig(cache_type=CacheType.MEMORY, max_size=50, ttl_seconds=1800)
    vuln_cache = VulnerabilityDBCache(config)
    try:
        query = {"cve_id": "CVE-2021-44228", "product": "log4j"}
        result = await vuln_cache.query_vulnerability_db(query)
        cached_result = await vuln_cache.query_vulnerability_db(query)  # Cache hit
        assert result == cached_result and result.ids == ["CVE-2021-44228"]
        assert result[0]["severity"][0]["score"].startswith("CVSS:3.1/")
        found = await vuln_cache.query_vulnerability_db({"product": "jinja2", "version": "2.4",
                                                         "ecosystem": "PyPI"})
        assert sorted(found.ids) == JINJA_24
        stats = vuln_cache.get_stats()
        assert f"{stats['hit_rate']:.2%}".endswith("%") and stats["hits"] == 1
        assert vuln_cache.config.namespace == "vulndb" and vuln_cache.config.max_size == 50
        assert vuln_cache.config.ttl_seconds == 1800
    finally:
        await vuln_cache.aclose()


async def test_invalid_query_is_value_error_before_any_request(vulndb, osv_server):
    with pytest.raises(ValueError, match="colour"):
        await vulndb.query_vulnerability_db({"product": "jinja2", "colour": "red"})
    with pytest.raises(ValueError):
        await vulndb.query_many([{"product": "jinja2", "ecosystem": "PyPI"}, {"version": "1.0"}])
    assert osv_server.total_requests == 0


async def test_nvd_keyword_and_cpe_queries(vulndb, osv_server):
    by_keyword = await vulndb.query_vulnerability_db({"keyword": "bccache"})
    assert "CVE-2014-1402" in by_keyword.ids
    by_cpe = await vulndb.query_vulnerability_db({"cpe": "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"})
    assert by_cpe.ids == ["CVE-2021-44228"]
    await vulndb.query_vulnerability_db({"keyword": "  BCCACHE "})  # normalised: a cache hit
    assert osv_server.requests["/rest/json/cves/2.0"] == 2


def _disk_config(tmp_path, **fields):
    return VulnDBConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), **fields)


async def test_disk_cache_survives_restart(tmp_path, osv_server):
    pytest.importorskip("scancache.cache.sqlite")
    settings = {"osv_url": osv_server.url, "nvd_url": osv_server.nvd_url}
    queries = [{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}]
    async with VulnerabilityDBCache(_disk_config(tmp_path, **settings)) as first:
        cold = await first.query_many(queries)
    osv_server.reset_counts()
    async with VulnerabilityDBCache(_disk_config(tmp_path, **settings)) as second:
        warm = await second.query_many(queries)
    assert warm == cold and osv_server.total_requests == 0


async def test_commit_query_online(vulndb, osv_server):
    commit = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
    osv_server.set_record({"id": "OSV-TEST-1", "modified": "2024-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "thing"},
         "ranges": [{"type": "GIT", "repo": "https://example.invalid/thing",
                     "events": [{"introduced": commit}, {"fixed": "f" * 40}]}]}]})
    assert (await vulndb.query_vulnerability_db({"commit": commit.upper()})).ids == ["OSV-TEST-1"]
    assert await vulndb.query_vulnerability_db({"commit": "f" * 40}) == []  # the fix itself
    assert (await vulndb.query_many([{"commit": commit}]))[0].ids == ["OSV-TEST-1"]
    assert osv_server.requests["/v1/query"] == 2 and osv_server.requests["/v1/querybatch"] == 0


async def test_a_server_with_latency_holds_every_answer_that_long(make_vulndb, osv_records):
    import time

    from scancache.testing.osv_server import OSVTestServer

    with pytest.raises(ValueError, match="latency"):
        OSVTestServer(osv_records, latency_seconds=-1)
    with OSVTestServer(osv_records, latency_seconds=0.15) as server:
        vulndb = make_vulndb(server=server)
        started = time.monotonic()
        result = await vulndb.query_vulnerability_db({"package": "jinja2", "ecosystem": "PyPI",
                                                      "version": "2.4"})
        assert server.total_requests >= 1 and time.monotonic() - started >= 0.15
        assert sorted(result.ids) == JINJA_24


def test_a_plain_cache_config_keeps_vulndb_defaults_it_did_not_set():
    vulndb = VulnerabilityDBCache(CacheConfig(cache_type=CacheType.MEMORY, ttl_seconds=1800))
    assert vulndb.config.max_size == VulnDBConfig().max_size  # not CacheConfig's 1,000
    assert vulndb.config.ttl_seconds == 1800
    assert VulnerabilityDBCache(CacheConfig(max_size=50)).config.max_size == 50


async def test_records_outliving_their_answer_are_reused_when_modified_is_unchanged(
        make_vulndb, osv_server, osv_records, fake_clock):
    """An answer and its records expire together; the batch asked again reports the same `modified`
    for all but one record: only that one is fetched again, the rest come from the stale window."""
    vulndb = make_vulndb(ttl_seconds=100)
    queries = [{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"},
               {"package": "requests", "ecosystem": "PyPI", "version": "2.0.0"}]
    first = await vulndb.query_many(queries)
    fetched = vulndb.get_stats()["records_fetched"]
    gets, package_queries = osv_server.requests["/v1/vulns"], osv_server.requests["/v1/query"]
    newer = copy.deepcopy(osv_records["PYSEC-2014-13"])
    newer["modified"] = "2030-01-01T00:00:00Z"
    osv_server.set_record(newer)
    fake_clock.advance(150)  # past every entry's TTL, inside the stale window
    second = await vulndb.query_many(queries)
    assert osv_server.requests["/v1/querybatch"] == 2
    assert osv_server.requests["/v1/vulns"] == gets + 1  # only the changed record
    assert osv_server.requests["/v1/query"] == package_queries
    assert [r.ids for r in second] == [r.ids for r in first]
    assert vulndb.get_stats()["records_reused"] == fetched - 1
    fake_clock.advance(50)  # the reused records were stored again: fresh now, no reads of stale ones
    await vulndb.cache.adelete(vulndb._query_key(parse_query(queries[0])))
    await vulndb.query_many(queries)
    assert vulndb.get_stats()["records_reused"] == fetched - 1


@pytest.mark.parametrize("concurrency", [3, 50])
async def test_osv_concurrency_bounds_the_record_fetches_in_flight(make_vulndb, osv_records, concurrency):
    """The record requests of a cold run go out osv_concurrency at a time, never more."""
    with OSVTestServer(osv_records, latency_seconds=0.05, max_lifetime_seconds=120) as server:
        vulndb = make_vulndb(server=server, osv_concurrency=concurrency)
        queries = [{"package": name, "ecosystem": "PyPI", "version": "0.1"}
                   for name in ("django", "jinja2", "requests", "flask", "pillow", "urllib3")]
        await vulndb.query_many(queries)
        fetched = server.requests["/v1/vulns"] + server.requests["/v1/query"]
        assert fetched > 3
        assert server.max_in_flight <= concurrency
        assert server.max_in_flight >= min(concurrency, fetched) * 0.5  # they did overlap


async def test_a_callers_httpx_client_is_used_and_left_open(make_vulndb, osv_server):
    import httpx

    async with httpx.AsyncClient() as client:
        vulndb = VulnerabilityDBCache(VulnDBConfig(osv_url=osv_server.url), http_client=client)
        result = await vulndb.query_many([{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}])
        assert len(result[0]) == 5
        await vulndb.aclose()
        assert not client.is_closed
