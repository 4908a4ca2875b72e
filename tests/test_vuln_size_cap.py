"""A hostile or broken OSV server cannot make an audit hold an answer of any size (attack note 4b):
a body over max_response_bytes fails the run closed, naming the endpoint, without retries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scancache.testing.osv_server import OSVTestServer

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "scancache" / "testing" / "data" / \
    "osv-pypi-sample.zip"


@pytest.fixture(scope="module")
def osv() -> OSVTestServer:
    with OSVTestServer.from_zip(SAMPLE) as server:
        yield server


def audit(tmp_path: Path, osv_url: str, limit: int | None) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "c.toml"
    config.write_text("[vulndb]\n" + (f"max_response_bytes = {limit}\n" if limit else ""))
    requirements = tmp_path / "r.txt"
    requirements.write_text("jinja2==2.4\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-m", "scancache", "--config", str(config), "audit",
                           "--cache-type", "memory", "--osv-url", osv_url, str(requirements)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_an_answer_over_the_limit_fails_the_audit_closed_naming_the_endpoint(tmp_path, osv):
    osv.reset_counts()
    done = audit(tmp_path, osv.url, 300)  # a full jinja2 record is a few kilobytes
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"{osv.url}/v1/" in done.stderr and "larger than 300 bytes" in done.stderr, done.stderr
    assert "max_response_bytes" in done.stderr
    assert "No known vulnerabilities" not in done.stdout
    answered = dict(osv.requests)
    assert sum(answered.values()) <= 3, answered  # failed at once: a too-large answer is not asked again


def test_the_default_limit_reads_ordinary_answers(tmp_path, osv):
    done = audit(tmp_path, osv.url, None)
    assert done.returncode == 1, (done.stdout, done.stderr)  # jinja2 2.4: vulnerable, as the data says
    assert "PYSEC-2014-8" in done.stdout


def test_the_limit_must_be_a_positive_integer():
    from scancache.vulndb.config import VulnDBConfig

    assert VulnDBConfig().max_response_bytes == 64 * 1024 * 1024
    for bad in (0, -1, 1.5, True, "64M"):
        with pytest.raises(ValueError, match="max_response_bytes"):
            VulnDBConfig(max_response_bytes=bad)
