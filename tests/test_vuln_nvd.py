"""NVD client: paging with startIndex, the shared rate limiter (in process and on Redis), apiKey."""

from __future__ import annotations

import asyncio

import pytest

from fixtures_osv import FakeClock, SleepRecorder
from scancache.testing.osv_server import OSVTestServer
from scancache.vulndb.nvd import nvd_to_osv
from scancache.vulndb.ratelimit import RedisWindowLimiter, SlidingWindowLimiter


def _assert_within_limit(times: list[float], limit: int, window: float) -> None:
    """No window of length `window` holds more than `limit` of the times."""
    for i in range(len(times) - limit):
        assert times[i + limit] - times[i] >= window, (i, times)


async def test_keyword_search_follows_start_index_pages(make_vulndb, osv_records):
    with OSVTestServer(osv_records, nvd_page_size=4) as server:
        vulndb = make_vulndb(server=server, nvd_rate_limit=100)
        result = await vulndb.query_vulnerability_db({"keyword": "django"})
        _status, page, _ = server.answer("GET", "/rest/json/cves/2.0",
                                        {"keywordSearch": ["django"]}, None, {})
        total = page["totalResults"]
        assert total > 8 and len(result) == total  # several pages, nothing lost or repeated
        assert len(set(result.ids)) == total
        assert server.requests["/rest/json/cves/2.0"] == -(-total // 4)
        assert all(r["database_specific"]["source"] == "nvd" for r in result)


async def test_sliding_window_limiter_never_exceeds_limit():
    clock = FakeClock(1000.0)
    sleeps = SleepRecorder(clock)
    limiter = SlidingWindowLimiter(5, 30.0, clock=clock, sleep=sleeps)
    times = []

    async def one() -> None:
        await limiter.acquire()
        times.append(clock())

    await asyncio.gather(*(one() for _ in range(17)))  # many tasks share one limiter
    assert len(times) == 17 and times == sorted(times)
    _assert_within_limit(times, 5, 30.0)
    assert times[-1] - times[0] == pytest.approx(90.0)  # 17 requests: 3 full waits, no more
    assert limiter.waits == 3


async def test_nvd_requests_go_through_the_limiter(make_vulndb, osv_server, fake_clock):
    sleeps = SleepRecorder(fake_clock)
    vulndb = make_vulndb(nvd_rate_limit=2, nvd_rate_window_seconds=30)
    vulndb.sleep = sleeps  # the limiter is built on first use with this sleep
    vulndb._clients()  # build the clients now, to watch when the shared limiter lets requests go
    limiter = vulndb._limiter
    seen: list[float] = []
    acquire = limiter.acquire

    async def stamped() -> None:
        await acquire()
        seen.append(fake_clock())

    limiter.acquire = stamped
    vulndb._nvd.limiter = limiter
    cves = ["CVE-2014-1402", "CVE-2014-0012", "CVE-2019-10906", "CVE-2016-10745", "CVE-2020-28493"]
    results = await asyncio.gather(*(vulndb.query_vulnerability_db({"cve_id": c}) for c in cves))
    assert [r.ids for r in results] == [[c] for c in cves]
    assert len(seen) == 5
    _assert_within_limit(sorted(seen), 2, 30.0)
    assert vulndb.get_stats()["nvd_rate_waits"] == 2 and sum(sleeps.calls) == pytest.approx(60)


async def test_api_key_header_and_higher_limit(make_vulndb, osv_server):
    vulndb = make_vulndb(nvd_api_key="secret-key")
    assert vulndb.config.nvd_rate_limit == 50
    await vulndb.query_vulnerability_db({"cve_id": "CVE-2014-1402"})
    assert osv_server.nvd_api_keys == ["secret-key"]
    keyless = make_vulndb()
    assert keyless.config.nvd_rate_limit == 5
    await keyless.query_vulnerability_db({"cve_id": "CVE-2014-0012"})
    assert osv_server.nvd_api_keys[-1] is None


async def test_nvd_403_rate_limit_answer_is_retried(make_vulndb, osv_server):
    vulndb = make_vulndb(max_retries=2)
    osv_server.inject("status", count=1, path="/rest/", status=403, retry_after="2")
    result = await vulndb.query_vulnerability_db({"cve_id": "CVE-2014-1402"})
    assert result.ids == ["CVE-2014-1402"] and vulndb.sleeps.calls == [0.05]


async def test_unknown_cve_is_an_empty_cached_answer(vulndb, osv_server):
    assert await vulndb.query_vulnerability_db({"cve_id": "CVE-1999-99999"}) == []
    assert await vulndb.query_vulnerability_db({"cve_id": "CVE-1999-99999"}) == []
    assert osv_server.requests["/rest/json/cves/2.0"] == 1


def test_nvd_to_osv_marks_rejected_as_withdrawn():
    cve = {"id": "CVE-2000-0001", "lastModified": "2020-01-01T00:00:00.000", "vulnStatus": "Rejected",
           "descriptions": [{"lang": "es", "value": "no"}, {"lang": "en", "value": "Rejected. Dup."}]}
    record = nvd_to_osv(cve)
    assert record["withdrawn"] == "2020-01-01T00:00:00.000Z" and record["details"] == "Rejected. Dup."


@pytest.mark.redis
async def test_redis_limiter_is_shared_by_workers(redis_url):
    clock = FakeClock(3000.0)  # a window boundary: windows are [3000, 3030), [3030, 3060) ...
    sleeps = SleepRecorder(clock)
    workers = [RedisWindowLimiter(redis_url, "scancache:test:nvd-rate", 5, 30.0, clock=clock,
                                  sleep=sleeps) for _ in range(2)]
    try:
        times = []
        for n in range(12):
            await workers[n % 2].acquire()
            times.append(clock())
        assert times[:5] == [3000.0] * 5 and times[5:10] == [3030.0] * 5 and times[10:] == [3060.0] * 2
        assert sum(w.waits for w in workers) == 2 and not any(w.errors for w in workers)
    finally:
        for worker in workers:
            await worker.aclose()


@pytest.mark.redis
async def test_vulndb_on_redis_uses_the_redis_limiter(redis_url, osv_server):
    pytest.importorskip("scancache.cache.redis")
    from scancache.config import CacheType
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig

    config = VulnDBConfig(cache_type=CacheType.REDIS, redis_url=redis_url, osv_url=osv_server.url,
                          nvd_url=osv_server.nvd_url)
    async with VulnerabilityDBCache(config) as vulndb:
        result = await vulndb.query_vulnerability_db({"cve_id": "CVE-2014-1402"})
        assert result.ids == ["CVE-2014-1402"]
        assert isinstance(vulndb._limiter, RedisWindowLimiter) and vulndb._limiter.errors == 0
        jinja = await vulndb.query_many([{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}])
        osv_server.reset_counts()
        assert await vulndb.query_many([{"package": "jinja2", "ecosystem": "PyPI",
                                         "version": "2.4"}]) == jinja
        assert osv_server.total_requests == 0


def test_an_api_key_never_overrides_an_explicit_rate_limit():
    from scancache.config import CacheConfig
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig

    made = [VulnerabilityDBCache(VulnDBConfig(nvd_rate_limit=7), nvd_api_key="k"),
            VulnerabilityDBCache(VulnDBConfig(nvd_rate_limit=5), nvd_api_key="k"),
            VulnerabilityDBCache(VulnDBConfig(), nvd_api_key="k"),
            VulnerabilityDBCache(CacheConfig(), nvd_api_key="k")]
    try:
        assert [v.config.nvd_rate_limit for v in made] == [7, 5, 50, 50]
        assert all(v.config.nvd_api_key == "k" for v in made)
    finally:
        for vulndb in made:
            vulndb.cache.close()
