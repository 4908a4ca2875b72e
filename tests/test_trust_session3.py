"""Session 3 attacks on the warm/cold audit paths, the recompute lease, the hybrid fill barrier and
DNS bulk reads: a lying upstream, a hostile local user, a crash must not yield a false "clean"."""

from __future__ import annotations

from typing import Any

import pytest

VANISHED_ID = "GHSA-vanished-0001"
OTHER_ID = "GHSA-listed-0002"


def _record(vuln_id: str, package: str) -> dict[str, Any]:
    return {"id": vuln_id, "modified": "2030-01-01T00:00:00Z", "summary": "planted",
            "affected": [{"package": {"ecosystem": "PyPI", "name": package},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}


@pytest.mark.parametrize("grouped", [False, True], ids=["one-get", "package-query"])
async def test_a_record_the_batch_listed_but_its_get_404s_is_not_clean(make_vulndb, osv_server, grouped):
    """The batch answer says the package is affected by an id; GET of that id answers 404 (a lying or
    broken upstream, a CDN serving a partial mirror). Dropping the id silently made the audit clean,
    and the answer listing it was cached, so every later run was clean too. grouped: two listed
    ids, asked with one /v1/query (which fails: each id then gets its GET)."""
    osv_server.plant(VANISHED_ID, _record(VANISHED_ID, "not-otherwise-vulnerable"),
                     packages=["not-otherwise-vulnerable"])
    osv_server.inject("status", count=1000, status=404, path="/v1/vulns/" + VANISHED_ID)
    if grouped:
        osv_server.plant(OTHER_ID, _record(OTHER_ID, "not-otherwise-vulnerable"),
                         packages=["not-otherwise-vulnerable"])
        osv_server.inject("status", count=1000, status=404, path="/v1/query")
    vulndb = make_vulndb(max_retries=1)
    for _ in range(2):  # cold, then warm: never clean
        report = await vulndb.audit("not-otherwise-vulnerable==1.0\n")
        assert [i for i, _ in report.skipped_advisories] == [VANISHED_ID], report.skipped_advisories
        assert [f.id for f in report.findings] == ([OTHER_ID] if grouped else [])
    if grouped:
        assert osv_server.requests["/v1/query"] >= 1  # the grouped path was taken


async def test_a_stale_answer_whose_records_go_missing_during_the_run_is_served_whole_not_clean(
        make_vulndb, osv_server, fake_clock):
    """OSV's batch is down, so a stale cached answer stands in (its records checked present); other
    queries of the same run then store entries that push those stale records out of a bounded
    cache. The stand-in's records were looked up again at the end and, missing, became [] (clean)."""
    jinja = {"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}
    vulndb = make_vulndb(max_retries=0, max_size=6)
    first = (await vulndb.query_many([jinja]))[0]
    assert len(first) == 5 and vulndb.cache.get_stats()["size"] == 6  # the answer and its 5 records
    fake_clock.advance(vulndb.config.ttl_seconds + 1)  # stale: OSV is asked, the copy may stand in
    osv_server.inject("503", count=100, path="/v1/querybatch")
    # Two CVE lookups of the same run store two entries (NVD answers) in the 6-entry cache.
    queries = [jinja, {"cve_id": "CVE-2021-44228"}, {"cve_id": "CVE-2099-0001"}]
    results = await vulndb.query_many(queries)
    assert results[0].stale and sorted(results[0].ids) == sorted(first.ids)  # what was checked, whole
    assert vulndb.cache.get_stats()["evictions"] >= 2  # the records it was checked with are gone


async def test_the_warm_path_never_answers_with_a_record_of_the_answer_missing(make_vulndb, osv_server):
    """A cached answer naming a record the cache lost (evicted, deleted, never stored) is no answer for
    the loop-free warm path; the online path asks for the record, and a 404 for it is no "clean"."""
    from scancache.vulndb.audit import audit_input_cached, read_requirements

    jinja = {"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}
    vulndb = make_vulndb(max_retries=0)
    first = (await vulndb.query_many([jinja]))[0]
    assert [len(r) for r in vulndb.query_many_cached([jinja])] == [len(first)] == [5]
    lost = first.ids[0]
    assert vulndb.cache.delete(vulndb._record_prefix + lost)
    assert vulndb.query_many_cached([jinja]) is None
    assert audit_input_cached(vulndb, read_requirements("jinja2==2.4\n")) is None
    osv_server.inject("status", count=100, status=404, path="/v1/vulns/" + lost)
    report = await vulndb.audit("jinja2==2.4\n")
    assert [i for i, _ in report.skipped_advisories] == [lost]
