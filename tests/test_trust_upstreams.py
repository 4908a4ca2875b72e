"""Switched upstreams: an answer cached from one OSV or NVD server is never served for another.

The bug this guards: an audit against an empty OSV server, then one against the real server with
the same cache, reported "No known vulnerabilities" for as long as the empty answers lived.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_osv import LOG4J_CVE
from scancache.config import CacheConfig, CacheType
from scancache.testing.osv_server import OSVTestServer
from scancache.vulndb.cache import VulnerabilityDBCache
from scancache.vulndb.config import VulnDBConfig
from scancache.vulndb.dump import all_zip_bytes
from scancache.vulndb.mirror import OSVMirror

JINJA = {"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}


@pytest.fixture
def empty_and_real(osv_records):
    """Two loopback OSV servers: one with no advisories, one with the real subset."""
    with OSVTestServer({}, max_lifetime_seconds=120) as empty, \
            OSVTestServer(osv_records, nvd_records=[LOG4J_CVE], max_lifetime_seconds=120) as real:
        yield empty, real


def _disk_config(tmp_path: Path, **fields) -> VulnDBConfig:
    return VulnDBConfig(cache_type=CacheType.DISK, cache_dir=str(tmp_path), max_retries=0, **fields)


async def test_an_empty_servers_answers_are_not_served_for_the_real_one(empty_and_real, tmp_path):
    empty, real = empty_and_real
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=empty.url) as vulndb:
        report = await vulndb.audit("jinja2==2.4\n")
        assert report.vulnerable == []
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=real.url) as vulndb:
        report = await vulndb.audit("jinja2==2.4\n")
    assert len(report.vulnerable) >= 1 and real.requests["/v1/querybatch"] == 1
    # and back: the real server's records are not served as the empty server's answer
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=empty.url) as vulndb:
        assert list(await vulndb.query_vulnerability_db(JINJA)) == []
        again = await vulndb.query_many([JINJA])  # the empty server's own cached answer
        assert list(again[0]) == [] and empty.requests["/v1/querybatch"] == 1


async def test_one_shared_cache_object_keeps_sources_apart(empty_and_real):
    from scancache.cache.core import Cache

    empty, real = empty_and_real
    shared = Cache(VulnDBConfig(namespace="vulndb"))
    first = VulnerabilityDBCache(VulnDBConfig(osv_url=empty.url), cache=shared)
    second = VulnerabilityDBCache(VulnDBConfig(osv_url=real.url), cache=shared)
    try:
        assert list(await first.query_vulnerability_db(JINJA)) == []
        assert len(await second.query_vulnerability_db(JINJA)) == 5
        assert [len(r) for r in await second.query_many([JINJA])] == [5]
        assert [len(r) for r in await first.query_many([JINJA])] == [0]
    finally:
        await first.aclose()
        await second.aclose()
        shared.close()


async def test_nvd_answers_are_keyed_by_the_nvd_url(empty_and_real, tmp_path):
    empty, real = empty_and_real
    cve = {"cve_id": "CVE-2021-44228"}  # only NVD knows it
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=real.url,
                                    nvd_url=real.nvd_url) as vulndb:
        assert (await vulndb.query_vulnerability_db(cve)).ids == ["CVE-2021-44228"]
        assert (await vulndb.query_vulnerability_db({"keyword": "log4j2"})).ids == ["CVE-2021-44228"]
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=real.url,
                                    nvd_url=empty.nvd_url) as vulndb:
        assert list(await vulndb.query_vulnerability_db(cve)) == []
        assert list(await vulndb.query_vulnerability_db({"keyword": "log4j2"})) == []
    assert empty.requests["/rest/json/cves/2.0"] == 2


async def test_the_mirror_is_a_source_of_its_own(empty_and_real, osv_records, tmp_path):
    _, real = empty_and_real
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=real.url) as vulndb:
        assert len(await vulndb.query_vulnerability_db(JINJA)) == 5
    path = tmp_path / "mirror.sqlite3"
    with OSVMirror(path) as mirror:  # a mirror that knows nothing about jinja2
        mirror.import_dump(all_zip_bytes([r for r in osv_records.values()
                                          if "jinja2" not in json.dumps(r.get("affected"))]))
    async with VulnerabilityDBCache(_disk_config(tmp_path), osv_url=real.url, mirror=str(path)) as vulndb:
        result = await vulndb.query_vulnerability_db(JINJA)
        assert result.source == "mirror" and list(result) == []


def test_cli_audit_against_an_empty_then_the_real_server(empty_and_real, tmp_path):
    empty, real = empty_and_real
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.4\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")

    def audit(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scancache", "audit", "-r", str(requirements),
                               "--osv-url", url], capture_output=True, text=True, env=env, timeout=60,
                              check=False)

    assert audit(empty.url).returncode == 0
    done = audit(real.url)
    assert done.returncode == 1, (done.stdout, done.stderr)


def test_plain_cache_config_sources_differ_by_url():
    a = VulnerabilityDBCache(CacheConfig(), osv_url="http://127.0.0.1:1")
    b = VulnerabilityDBCache(CacheConfig(), osv_url="http://127.0.0.1:2")
    from scancache.vulndb.query import parse_query

    q = parse_query(JINJA)
    assert a._query_key(q) != b._query_key(q) and a._record_prefix != b._record_prefix
    a.cache.close()
    b.cache.close()
