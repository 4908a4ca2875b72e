"""A warm `scancache audit` (every answer already in the disk cache) imports only what it uses.

A warm run is bounded by Python start-up and imports (issue 14: warm must be no slower than uv's),
so modules only a cold run, a mirror or a finding needs must stay out of it. Checked in a
subprocess with -X importtime, as test_cli.py does for --help; speed itself is shown by
benchmarks/bench_audit.py, not timed here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scancache.testing.osv_server import OSVTestServer

#: HTTP clients (a warm run sends no request), the zip reader (only --mirror reads a zip), the
#: CVSS scorer (only a finding's severity needs it), asyncio and the sockets under it (the cache
#: answers without an event loop) and tempfile (only --mirror needs a work directory).
NOT_ON_A_WARM_RUN = ("pyreqwest", "httpx", "aiohttp", "urllib3", "requests", "http", "zipfile", "cvss",
                     "asyncio", "ssl", "socket", "selectors", "concurrent", "tempfile",
                     # a run that logs nothing never imports logging (scancache._log)
                     "logging", "traceback",
                     # answers and findings are stored uncompressed; hashing uses the built-in SHA-256;
                     # HMAC only with a signing key; random and bisect only for early refresh
                     "zstandard", "platform", "hashlib", "_hashlib", "hmac", "random",
                     # inspect (dataclasses imports it) is deferred: its code, and what it imports, never runs
                     "ast", "dis", "tokenize", "linecache",
                     # every version here is read without packaging (ranges.pep440_normal)
                     "packaging")
#: Submodules of packages a warm run does use: packaging.utils imports packaging.tags, platform,
#: subprocess and sysconfig (scancache spells canonical versions itself); the settings of other
#: commands (only the sections an audit uses are built); the cache's parts an audit does not use.
NOT_ON_A_WARM_RUN_EXACTLY = ("packaging.utils", "packaging.tags", "subprocess", "scancache.config",
                             "scancache.dns", "scancache.dns.config", "scancache.lazyload",
                             "scancache.lazyload.config", "scancache.cache.refresh",
                             "scancache.cache.memory", "scancache.cache.urls")


def _audit(requirements: Path, server: OSVTestServer, cache_dir: Path,
           importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "scancache",
               "audit", "-r", str(requirements), "--osv-url", server.url, "--cache-dir", str(cache_dir)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_a_warm_clean_audit_imports_no_http_client_event_loop_zipfile_or_cvss(
        osv_server: OSVTestServer, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    # 1.0.0rc1: a version that is not a plain release takes the PEP 440 parser
    requirements.write_text("jinja2==3.1.6\nrequests==2.32.3\nidna==3.10\nno-such-package==1.0.0rc1\n",
                            encoding="utf-8")
    cold = _audit(requirements, osv_server, tmp_path / "cache")
    assert cold.returncode == 0, cold.stderr
    assert osv_server.total_requests > 0  # the cold run asked the server: the cache now holds it
    osv_server.reset_counts()

    warm = _audit(requirements, osv_server, tmp_path / "cache", importtime=True)
    assert warm.returncode == 0, warm.stderr
    assert "No known vulnerabilities found in 4 packages" in warm.stdout
    assert osv_server.total_requests == 0  # answered from the disk cache alone
    imported = {line.split("|")[-1].strip() for line in warm.stderr.splitlines()
                if line.startswith("import time:")}
    assert "scancache.vulndb.audit" in imported  # the listing is real: the audit itself is in it
    unwanted = sorted(m for m in imported if m.split(".")[0] in NOT_ON_A_WARM_RUN
                      or m in NOT_ON_A_WARM_RUN_EXACTLY)
    assert unwanted == []
