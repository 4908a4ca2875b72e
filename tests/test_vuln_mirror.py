"""Offline OSV mirror: import, in-place update, queries against known advisories, offline answers."""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path

import pytest

from fixtures_osv import SUBSET_ZIP
from scancache.testing.osv_server import OSVTestServer, all_zip_bytes
from scancache.vulndb.cache import VulnerabilityDBCache
from scancache.vulndb.config import VulnDBConfig
from scancache.vulndb.mirror import OSVMirror

FULL_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "osv-pypi-all.zip"
JINJA_24 = ["PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]


@pytest.fixture
def mirror(tmp_path):
    with OSVMirror(tmp_path / "osv-mirror.sqlite3") as m:
        report = m.import_dump(SUBSET_ZIP)
        assert (report.added, report.updated, report.removed, report.skipped) == (254, 0, 0, 0)
        yield m


def _ids(records):
    return sorted(r["id"] for r in records)


def test_known_vulnerable_and_fixed_versions(mirror):
    assert _ids(mirror.query({"product": "jinja2", "ecosystem": "PyPI", "version": "2.4"})) == JINJA_24
    assert _ids(mirror.query({"purl": "pkg:pypi/Jinja2@2.10"})) == ["PYSEC-2019-217", "PYSEC-2021-66"]
    assert mirror.query({"product": "jinja2", "ecosystem": "PyPI", "version": "2.11.3"}) == []
    assert "PYSEC-2018-28" in _ids(mirror.query({"package": "requests", "ecosystem": "PyPI",
                                                 "version": "2.19.0"}))
    assert mirror.query({"package": "requests", "ecosystem": "PyPI", "version": "2.32.0"}) == []
    assert len(mirror.query({"package": "jinja2", "ecosystem": "PyPI"})) == 5  # no version: all
    assert _ids(mirror.query({"cve_id": "CVE-2014-1402"})) == ["PYSEC-2014-8"]


def test_mirror_agrees_with_the_online_answers(mirror, osv_records):
    server = OSVTestServer(osv_records)  # used as a matcher only; not started
    for name in ("django", "urllib3", "flask", "werkzeug", "pillow", "aiohttp"):
        for version in ("0.1", "1.0", "1.11", "2.0.1", "2.2.0", "3.0", "8.0.0"):
            body = {"package": {"name": name, "ecosystem": "PyPI"}, "version": version}
            assert _ids(mirror.query({"package": name, "ecosystem": "PyPI", "version": version})) == \
                _ids(server.match(body)), (name, version)


def test_update_in_place_counts_and_replaces_only_changed(mirror, osv_records, tmp_path):
    records = {i: copy.deepcopy(r) for i, r in osv_records.items()}
    removed = ["PYSEC-2014-13", "PYSEC-2014-14"]
    for vuln_id in removed:
        del records[vuln_id]
    changed = ["PYSEC-2014-8", "PYSEC-2019-217", "PYSEC-2021-66"]
    for vuln_id in changed:
        records[vuln_id]["modified"] = "2030-01-01T00:00:00Z"
        records[vuln_id]["summary"] = "revised"
    records["PYSEC-2099-1"] = {"id": "PYSEC-2099-1", "modified": "2030-01-02T00:00:00Z",
                               "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2"},
                                             "versions": ["3.1.4"]}]}
    progress = []
    report = mirror.import_dump(all_zip_bytes(records.values()),
                                progress=lambda done, total: progress.append((done, total)))
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 3, 249, 2)
    assert progress[-1] == (253, 253) and [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert mirror.get("PYSEC-2014-13") is None and mirror.get("PYSEC-2014-8")["summary"] == "revised"
    assert _ids(mirror.query({"purl": "pkg:pypi/jinja2@3.1.4"})) == ["PYSEC-2099-1"]
    assert mirror.stats()["high_water_mark"] == "2030-01-02T00:00:00Z"
    again = mirror.import_dump(all_zip_bytes(records.values()))
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 253, 0)


def test_bad_dump_leaves_the_mirror_unchanged(mirror, tmp_path):
    with pytest.raises(zipfile.BadZipFile):
        mirror.import_dump(b"not a zip")
    assert len(mirror) == 254
    good = {"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": []}
    report = mirror.import_dump(all_zip_bytes([good]) , remove_missing=False)
    assert report.added == 1 and len(mirror) == 255


def test_semver_and_commit_queries(tmp_path):
    records = [
        {"id": "GHSA-npm-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "npm", "name": "Left-Pad"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.3.0-rc.1"}]}]}]},
        {"id": "GO-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "Go", "name": "github.com/x/y"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "v1.10.0"}]}]}]},
        {"id": "OSV-GIT-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "PyPI", "name": "thing"},
             "ranges": [{"type": "GIT", "repo": "https://example.invalid/thing",
                         "events": [{"introduced": "a1b2c3d4e5f6"}, {"fixed": "ffffeeee0000"}]}]}]},
    ]
    with OSVMirror(tmp_path / "m.sqlite3") as mirror:
        mirror.import_dump(all_zip_bytes(records))
        assert _ids(mirror.query({"purl": "pkg:npm/left-pad@1.2.9"})) == ["GHSA-npm-1"]
        assert mirror.query({"purl": "pkg:npm/left-pad@1.3.0-rc.1"}) == []
        assert mirror.query({"purl": "pkg:npm/left-pad@0.9.0"}) == []
        assert _ids(mirror.query({"purl": "pkg:golang/github.com/x/y@v1.9.0"})) == ["GO-1"]
        assert mirror.query({"purl": "pkg:golang/github.com/x/y@v1.10.0"}) == []
        assert _ids(mirror.query({"commit": "A1B2C3D4E5F6"})) == ["OSV-GIT-1"]
        assert mirror.query({"commit": "0123456789ab"}) == []
        with pytest.raises(ValueError, match="NVD"):
            mirror.query({"keyword": "x"})


async def test_vulndb_answers_offline_from_mirror(tmp_path, mirror):
    import socket

    with socket.socket() as sock:  # a port nobody listens on: any request would fail loudly
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = VulnDBConfig(osv_url=dead, nvd_url=dead + "/nvd", mirror_path=str(mirror.path), max_retries=0)
    async with VulnerabilityDBCache(config) as vulndb:
        result = await vulndb.query_vulnerability_db({"product": "jinja2", "version": "2.4",
                                                      "ecosystem": "PyPI"})
        assert sorted(result.ids) == JINJA_24 and result.source == "mirror"
        report = await vulndb.audit(["jinja2==2.4", "requests==2.32.0"])
        assert [f.package for f in report.vulnerable] == ["jinja2"] * 5
        assert vulndb.get_stats()["requests_total"] == 0


def test_import_full_dump(tmp_path):
    if not FULL_ZIP.exists():
        pytest.skip("the full OSV PyPI dump is not next to this checkout")
    with OSVMirror(tmp_path / "full.sqlite3") as mirror:
        report = mirror.import_dump(FULL_ZIP)
        assert report.added == 2661 and mirror.stats()["withdrawn"] == 10
        assert _ids(mirror.query({"purl": "pkg:pypi/jinja2@2.4"})) == JINJA_24
        assert mirror.import_dump(FULL_ZIP).unchanged == 2661


def test_only_an_imported_mirror_answers_and_foreign_files_are_refused(mirror, tmp_path):
    with pytest.raises(ValueError, match="no imported mirror"):
        OSVMirror(tmp_path / "typo.sqlite3", create=False)  # a typo must not answer "clean"
    assert not (tmp_path / "typo.sqlite3").exists()
    empty = OSVMirror(tmp_path / "fresh.sqlite3")  # created, never imported into
    empty.close()
    with pytest.raises(ValueError, match="no imported mirror"):
        OSVMirror(tmp_path / "fresh.sqlite3", create=False)
    import sqlite3

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    for create in (True, False):
        with pytest.raises(ValueError, match="not a scancache mirror"):
            OSVMirror(other, create=create)
    reopened = OSVMirror(mirror.path, create=False)
    assert len(reopened) == len(mirror) > 0
    reopened.close()


def test_an_archive_without_records_does_not_wipe_the_mirror(mirror, tmp_path):
    before = len(mirror)
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr("README.txt", "not an advisory")
    with pytest.raises(ValueError, match="no OSV records"):
        mirror.import_dump(wrong)
    assert len(mirror) == before


def test_a_dump_that_repeats_an_id_keeps_the_first_and_counts_the_rest(tmp_path, osv_records):
    record = next(iter(osv_records.values()))
    other = copy.deepcopy(record)
    other["summary"] = "a second copy"
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile's own note on the repeat
        dump = all_zip_bytes([record, other])
    with OSVMirror(tmp_path / "m.sqlite3") as mirror:
        report = mirror.import_dump(dump)
        assert (report.added, report.skipped) == (1, 1) and len(mirror) == 1
