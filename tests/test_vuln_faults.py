"""Retries, backoff and malformed answers against the loopback server's injected faults."""

from __future__ import annotations

import email.utils
import random

import pytest

from scancache.errors import VulnDBError
from scancache.vulndb.http import JSONClient, parse_retry_after

JINJA = {"product": "jinja2", "version": "2.4", "ecosystem": "PyPI"}
BATCH = [{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"},
         {"package": "requests", "ecosystem": "PyPI", "version": "2.0.0"}]


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    date = email.utils.formatdate(1_000_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000_000) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(10, usegmt=True), now=100) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_is_full_jitter_capped():
    client = JSONClient(None, max_retries=5, backoff_base_seconds=0.5, backoff_max_seconds=3.0,
                        rng=random.Random(7))
    for attempt in range(6):
        delays = [client.backoff(attempt, None) for _ in range(200)]
        ceiling = min(3.0, 0.5 * 2 ** attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole interval, not a fixed step
    assert client.backoff(0, 2.5) == 2.5 and client.backoff(0, 99) == 3.0  # Retry-After, capped


async def test_429_retry_after_is_honoured(make_vulndb, osv_server):
    vulndb = make_vulndb(backoff_max_seconds=10)
    osv_server.inject("429", count=2, path="/v1/query", retry_after="3")
    result = await vulndb.query_vulnerability_db(JINJA)
    assert len(result) == 5
    assert vulndb.sleeps.calls == [3.0, 3.0]
    assert vulndb.get_stats()["retries"] == 2


async def test_retry_after_capped_by_backoff_max(make_vulndb, osv_server):
    vulndb = make_vulndb(backoff_max_seconds=0.5)
    osv_server.inject("429", count=1, path="/v1/querybatch", retry_after="3600")
    await vulndb.query_many(BATCH)
    assert vulndb.sleeps.calls == [0.5]


async def test_503_burst_then_success(make_vulndb, osv_server):
    vulndb = make_vulndb(max_retries=3, backoff_base_seconds=0.01, backoff_max_seconds=1)
    osv_server.inject("503", count=3, path="/v1/querybatch")
    results = await vulndb.query_many(BATCH)
    assert sum(map(len, results)) > 0
    assert osv_server.requests["/v1/querybatch"] == 4
    assert len(vulndb.sleeps.calls) == 3
    assert all(0 <= s <= 0.01 * 2 ** n for n, s in enumerate(vulndb.sleeps.calls))


async def test_gives_up_naming_endpoint_and_caches_nothing(make_vulndb, osv_server):
    vulndb = make_vulndb(max_retries=2)
    osv_server.inject("503", count=3, path="/v1/query")
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_vulnerability_db(JINJA)
    assert info.value.endpoint == f"POST {osv_server.url}/v1/query" and info.value.status == 503
    assert "gave up after 3 attempt" in str(info.value)
    assert osv_server.requests["/v1/query"] == 3 and len(vulndb.cache) == 0
    result = await vulndb.query_vulnerability_db(JINJA)  # the API is back: a real answer
    assert len(result) == 5 and osv_server.requests["/v1/query"] == 5


@pytest.mark.parametrize("kind", ["drop", "truncated", "malformed", "wrong_shape"])
async def test_broken_answers_are_retried(make_vulndb, osv_server, kind):
    vulndb = make_vulndb(max_retries=2)
    osv_server.inject(kind, count=2, path="/v1/querybatch")
    results = await vulndb.query_many(BATCH)
    assert len(results[0]) == 5
    assert osv_server.requests["/v1/querybatch"] == 3


RECORD_IDS = ["PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]


async def test_truncated_record_answers_raise_and_are_never_cached(make_vulndb, osv_server):
    vulndb = make_vulndb(max_retries=1)
    osv_server.inject("truncated", count=100, path="/v1/query")  # the package's records at once
    osv_server.inject("truncated", count=100, path="/v1/vulns/")  # and one by one
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_many(BATCH[:1])
    assert "/v1/query" in info.value.endpoint or "/v1/vulns/" in info.value.endpoint
    assert all(vulndb.cache.get(vulndb._record_prefix + i) is None for i in RECORD_IDS)
    osv_server.clear_faults()
    results = await vulndb.query_many(BATCH[:1])
    assert len(results[0]) == 5 and all(r["affected"] for r in results[0])


@pytest.mark.parametrize("kind", ["malformed", "wrong_shape"])
async def test_garbled_record_answers_are_skipped_named_and_never_cached(make_vulndb, osv_server, kind):
    """A server that keeps answering garbage for a record: after the retries the record is skipped
    (named, with the reason) rather than failing the whole query, and nothing is cached."""
    vulndb = make_vulndb(max_retries=1)
    osv_server.inject(kind, count=100, path="/v1/query")  # the package's records at once
    osv_server.inject(kind, count=100, path="/v1/vulns/")  # and one by one, after that
    results = await vulndb.query_many(BATCH[:1])
    assert list(results[0]) == [] and not results[0].complete
    assert sorted(i for i, _ in results[0].skipped) == RECORD_IDS
    assert all("malformed" in reason for _, reason in results[0].skipped)
    assert all(vulndb.cache.get(vulndb._record_prefix + i) is None for i in RECORD_IDS)
    osv_server.clear_faults()
    results = await vulndb.query_many(BATCH[:1])
    assert len(results[0]) == 5 and results[0].complete


async def test_timeout_is_retried(make_vulndb, osv_server):
    # A timeout roomy enough that the healthy retry never times out on a loaded machine.
    vulndb = make_vulndb(timeout_seconds=1.0, max_retries=2)
    osv_server.inject("slow", count=1, path="/v1/query", delay=3.0)
    assert len(await vulndb.query_vulnerability_db(JINJA)) == 5
    assert vulndb.get_stats()["retries"] == 1


async def test_client_errors_are_not_retried(make_vulndb, osv_server):
    vulndb = make_vulndb(max_retries=3)
    osv_server.inject("status", count=1, path="/v1/query", status=400)
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_vulnerability_db(JINJA)
    assert info.value.status == 400 and osv_server.requests["/v1/query"] == 1


async def test_connection_refused_is_an_error_not_a_hang(make_vulndb, osv_server):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    vulndb = make_vulndb(osv_url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_vulnerability_db(JINJA)
    assert "connection failed" in info.value.reason and str(port) in info.value.endpoint


def test_backoff_stays_finite_for_any_attempt_number():
    from scancache.vulndb.http import JSONClient

    client = JSONClient(None, max_retries=5000, backoff_base_seconds=0.5, backoff_max_seconds=30.0)
    delays = [client.backoff(attempt, None) for attempt in (0, 10, 1100, 4999)]
    assert all(0 <= d <= 30.0 for d in delays)
    assert client.backoff(3, 120.0) == 30.0  # Retry-After honoured up to the configured ceiling


def test_nuget_four_part_versions_are_not_misordered_as_semver():
    from scancache.vulndb.ranges import affected_entry_matches

    entry = {"package": {"ecosystem": "NuGet", "name": "Some.Package"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.3.0.1"}]}],
             "versions": ["4.3.0.0"]}
    assert not affected_entry_matches(entry, version="5.0.0")  # was a false positive
    assert affected_entry_matches(entry, version="4.3.0.0")  # the record's own list still applies


async def test_a_garbled_package_answer_falls_back_to_one_get_per_record(make_vulndb, osv_server):
    """The /v1/query that brings a package's records keeps answering garbage: each record the batch
    listed is then asked with its own GET, and the answer is whole."""
    vulndb = make_vulndb(max_retries=1)
    osv_server.inject("malformed", count=100, path="/v1/query")
    results = await vulndb.query_many(BATCH[:1])
    assert sorted(results[0].ids) == RECORD_IDS and results[0].complete
    assert osv_server.requests["/v1/vulns"] == len(RECORD_IDS)


async def test_a_malformed_record_in_a_package_answer_is_asked_again_by_its_own_get(
        make_vulndb, osv_server, monkeypatch):
    """A package answer whose first record per page is malformed: those records are not taken from
    it (nor stored); their own GETs bring well-formed copies, and only those are kept."""
    real = osv_server._query

    def first_record_broken(body):
        status, data, headers = real(body)
        if data.get("vulns"):
            data = {**data, "vulns": [{**data["vulns"][0], "affected": "not a list"}, *data["vulns"][1:]]}
        return status, data, headers

    monkeypatch.setattr(osv_server, "_query", first_record_broken)
    vulndb = make_vulndb()
    results = await vulndb.query_many(BATCH[:1])
    assert sorted(results[0].ids) == RECORD_IDS and results[0].complete
    assert all(isinstance(r["affected"], list) for r in results[0])
    assert osv_server.requests["/v1/query"] == 2  # 5 records, 3 a page
    assert osv_server.requests["/v1/vulns"] == 2  # one broken record per page
    stored = [vulndb.cache.get(vulndb._record_prefix + i) for i in RECORD_IDS]
    assert all(isinstance(r["affected"], list) for r in stored)
