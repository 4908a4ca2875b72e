"""Hostile advisories: a server (or a dump) that hands out malformed records must not crash an audit,
poison the cache, or turn a package it concerned into a false "clean".

Each hostile record is planted on the loopback OSV server for a package, next to real advisories:
the record is skipped with one warning naming its id, never cached, listed in the answer's
`skipped`; an audit reports it and never exits 0 because of it.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scancache.testing.osv_server import OSVTestServer
from scancache.vulndb.dump import all_zip_bytes
from scancache.vulndb.mirror import OSVMirror
from scancache.vulndb.records import record_problem
from support import cli_env, run_cli

HOSTILE_ID = "GHSA-hostile-0001"
JINJA_RANGE = {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10"}]}
JINJA_PACKAGE = {"ecosystem": "PyPI", "name": "jinja2"}


def _record(**fields: Any) -> dict[str, Any]:
    base = {"id": HOSTILE_ID, "modified": "2030-01-01T00:00:00Z", "summary": "hostile",
            "affected": [{"package": JINJA_PACKAGE, "ranges": [JINJA_RANGE]}]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()

#: name -> a malformed record body (bytes: not JSON at all).
HOSTILE: dict[str, Any] = {
    "null_in_events": _record(affected=[{"package": JINJA_PACKAGE,
                                         "ranges": [{"type": "ECOSYSTEM", "events": [None]}]}]),
    "string_in_events": _record(affected=[{"package": JINJA_PACKAGE,
                                           "ranges": [{"type": "ECOSYSTEM", "events": ["0"]}]}]),
    "events_a_string": _record(affected=[{"package": JINJA_PACKAGE,
                                          "ranges": [{"type": "ECOSYSTEM", "events": "introduced"}]}]),
    "affected_oops": _record(affected=["oops"]),
    "ranges_null": _record(affected=[{"package": JINJA_PACKAGE, "ranges": [None]}]),
    "aliases_a_string": _record(aliases="CVE-2099-0001"),
    "empty_event": _record(affected=[{"package": JINJA_PACKAGE,
                                      "ranges": [{"type": "ECOSYSTEM", "events": [{}, {"fixed": "3"}]}]}]),
    "missing_affected": _record(affected=_DROP),
    "unparseable_version": _record(affected=[{"package": JINJA_PACKAGE, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "not a version!"}, {"fixed": "3"}]}]}]),
    "not_json": b"{this is not JSON",
}


@pytest.mark.parametrize("name", [n for n, body in HOSTILE.items() if not isinstance(body, bytes)])
def test_every_hostile_shape_is_refused_by_the_one_validator(name):
    assert record_problem(HOSTILE[name]) is not None
    assert record_problem(_record()) is None  # the same record, well formed, passes


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_advisory_is_skipped_named_and_never_cached(make_vulndb, osv_server, caplog, name):
    osv_server.plant(HOSTILE_ID, HOSTILE[name], packages=["jinja2"])
    vulndb = make_vulndb(max_retries=1)
    query = {"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}
    with caplog.at_level(logging.WARNING, logger="scancache.vulndb"):
        first = (await vulndb.query_many([query]))[0]
    assert len(first) == 5 and HOSTILE_ID not in first.ids  # the real advisories still come back
    assert [i for i, _ in first.skipped] == [HOSTILE_ID] and not first.complete
    warnings = [r.getMessage() for r in caplog.records if HOSTILE_ID in r.getMessage()]
    assert len(warnings) == 1
    assert vulndb.cache.get(vulndb._record_prefix + HOSTILE_ID) is None  # never cached
    gets = osv_server.requests["/v1/vulns"]
    again = (await vulndb.query_many([query]))[0]  # warm: still reported, fetched again, no crash
    assert [i for i, _ in again.skipped] == [HOSTILE_ID] and len(again) == 5
    assert osv_server.requests["/v1/vulns"] > gets


@pytest.mark.parametrize("name", [n for n, body in HOSTILE.items() if not isinstance(body, bytes)])
async def test_hostile_advisory_in_a_single_query_answer_is_skipped_and_the_answer_not_cached(
        make_vulndb, osv_server, name):
    osv_server.plant(HOSTILE_ID, HOSTILE[name], packages=["jinja2"])
    vulndb = make_vulndb(max_retries=1)
    query = {"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}
    result = await vulndb.query_vulnerability_db(query)
    assert len(result) == 5 and [i for i, _ in result.skipped] == [HOSTILE_ID]
    asked = osv_server.requests["/v1/query"]
    again = await vulndb.query_vulnerability_db(query)  # not served from a cache that lost it
    assert osv_server.requests["/v1/query"] > asked and [i for i, _ in again.skipped] == [HOSTILE_ID]


async def test_a_skipped_advisory_makes_the_audit_report_it_not_clean(make_vulndb, osv_server):
    osv_server.plant(HOSTILE_ID, HOSTILE["events_a_string"], packages=["not-otherwise-vulnerable"])
    vulndb = make_vulndb(max_retries=1)
    report = await vulndb.audit("not-otherwise-vulnerable==1.0\n")
    assert report.vulnerable == []
    assert [i for i, _ in report.skipped_advisories] == [HOSTILE_ID]
    assert "not-otherwise-vulnerable==1.0" in report.skipped_advisories[0][1]
    assert json.loads(report.to_json())["skipped_advisories"][0]["id"] == HOSTILE_ID


def _cli(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=cli_env(cache_dir))


@pytest.mark.parametrize("name", ["events_a_string", "not_json"])
def test_cli_audit_never_exits_clean_when_an_advisory_was_skipped(osv_records, tmp_path, name):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("not-otherwise-vulnerable==1.0\n")
    with OSVTestServer(osv_records, max_lifetime_seconds=120) as server:
        server.plant(HOSTILE_ID, HOSTILE[name], packages=["not-otherwise-vulnerable"])
        for _ in range(2):  # cold, then warm: the same verdict
            done = _cli("audit", "-r", str(requirements), "--format", "json", "--osv-url", server.url,
                        cache_dir=tmp_path / "cache")
            assert done.returncode == 2, (done.stdout, done.stderr)
            assert "Traceback" not in done.stderr and HOSTILE_ID in done.stderr
            assert json.loads(done.stdout)["skipped_advisories"][0]["id"] == HOSTILE_ID
        server.plant(HOSTILE_ID, HOSTILE[name], packages=["jinja2"])  # with real findings: exit 1
        requirements.write_text("jinja2==2.4\n")
        done = _cli("audit", "-r", str(requirements), "--format", "json", "--osv-url", server.url,
                    cache_dir=tmp_path / "cache")
        assert done.returncode == 1 and HOSTILE_ID in done.stderr


def _dump_with_hostile_files(osv_records: dict[str, dict[str, Any]]) -> bytes:
    """The real records plus one file per hostile shape (named BAD-<name>.json)."""
    import io
    import zipfile

    buffer = io.BytesIO(all_zip_bytes(osv_records.values()))
    with zipfile.ZipFile(buffer, "a") as archive:
        for name, body in HOSTILE.items():
            if isinstance(body, dict):
                body = json.dumps({**body, "id": f"BAD-{name}"})
            archive.writestr(f"BAD-{name}.json", body)
    return buffer.getvalue()


def test_mirror_import_skips_each_hostile_file_by_name_and_reports_it_for_its_package(
        osv_records, tmp_path):
    with OSVMirror(tmp_path / "m.sqlite3") as mirror:
        report = mirror.import_dump(_dump_with_hostile_files(osv_records))
        assert report.added == len(osv_records) and report.skipped == len(HOSTILE)
        assert sorted(f for f, _ in report.skipped_files) == sorted(f"BAD-{n}.json" for n in HOSTILE)
        assert all(reason for _, reason in report.skipped_files)
        records, skipped = mirror.query_checked({"package": "jinja2", "ecosystem": "PyPI",
                                                 "version": "2.4"})
        assert len(records) == 5  # the good ones still answer
        # every hostile file that still names jinja2 readably marks it unknown, whatever the version
        names_jinja = {n for n, body in HOSTILE.items() if isinstance(body, dict)
                       and isinstance(body.get("affected"), list) and isinstance(body["affected"][0], dict)}
        assert {i for i, _ in skipped} == {f"BAD-{n}" for n in names_jinja}
        assert len(names_jinja) == 7


def test_mirror_update_keeps_the_good_copy_when_a_record_turns_malformed(osv_records, tmp_path):
    with OSVMirror(tmp_path / "m.sqlite3") as mirror:
        mirror.import_dump(all_zip_bytes(osv_records.values()))
        broken = dict(osv_records["PYSEC-2014-8"], affected="oops", modified="2031-01-01T00:00:00Z")
        report = mirror.import_dump(all_zip_bytes([*[r for i, r in osv_records.items()
                                                      if i != "PYSEC-2014-8"], broken]))
        assert report.removed == 0 and report.skipped == 1
        assert mirror.get("PYSEC-2014-8") == osv_records["PYSEC-2014-8"]


async def test_offline_audit_reports_a_malformed_mirror_record(osv_records, tmp_path):
    from scancache.vulndb.cache import VulnerabilityDBCache

    path = tmp_path / "m.sqlite3"
    with OSVMirror(path) as mirror:
        mirror.import_dump(_dump_with_hostile_files(osv_records))
    async with VulnerabilityDBCache(mirror=str(path)) as vulndb:
        report = await vulndb.audit("jinja2==2.4\n")
    assert len(report.vulnerable) >= 1
    assert "BAD-events_a_string" in {i for i, _ in report.skipped_advisories}


def test_cli_mirror_import_names_each_skipped_file(osv_records, tmp_path):
    dump = tmp_path / "all.zip"
    dump.write_bytes(_dump_with_hostile_files(osv_records))
    done = _cli("mirror", "import", str(dump), "--mirror-db", str(tmp_path / "m.sqlite3"),
                cache_dir=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert sorted(f["file"] for f in summary["skipped_files"]) == sorted(f"BAD-{n}.json" for n in HOSTILE)
    assert all(f"BAD-{n}.json" in done.stderr for n in HOSTILE)


# ----------------------------------------------------------------- withdrawn (attack finding 2)
@pytest.mark.parametrize("withdrawn, problem", [
    ("2020-01-01T00:00:00Z", False), ("2099-01-01T00:00:00.123456+02:00", False),
    ("2020-01-01t00:00:00z", False), ("not-a-date", True), ("2020-01-01", True),
    ("2020-13-01T00:00:00Z", True), ("", True),
])
def test_withdrawn_must_be_an_rfc3339_timestamp(withdrawn, problem):
    assert (record_problem(_record(withdrawn=withdrawn)) is not None) is problem


async def test_only_a_withdrawn_date_in_the_past_hides_a_record(make_vulndb, osv_server):
    package = "not-otherwise-vulnerable"
    entry = {"package": {"ecosystem": "PyPI", "name": package}, "ranges": [JINJA_RANGE]}
    osv_server.plant("GHSA-future-0001", _record(id="GHSA-future-0001", affected=[entry],
                                                 withdrawn="2099-01-01T00:00:00Z"), packages=[package])
    osv_server.plant("GHSA-past-0001", _record(id="GHSA-past-0001", affected=[entry],
                                               withdrawn="2020-01-01T00:00:00Z"), packages=[package])
    osv_server.plant("GHSA-garbled-0001", _record(id="GHSA-garbled-0001", affected=[entry],
                                                  withdrawn="not-a-date"), packages=[package])
    vulndb = make_vulndb(max_retries=1)
    report = await vulndb.audit(f"{package}==1.0\n")
    assert [f.id for f in report.vulnerable] == ["GHSA-future-0001"]  # not withdrawn yet
    assert report.withdrawn_ignored == 1  # the past one
    assert [i for i, _ in report.skipped_advisories] == ["GHSA-garbled-0001"]  # malformed: exit 2
