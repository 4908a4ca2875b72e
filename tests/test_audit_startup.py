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

#: HTTP clients (a warm run sends no request), the zip reader (only --mirror reads a zip) and the
#: CVSS scorer (only a finding's severity needs it).
NOT_ON_A_WARM_RUN = ("pyreqwest", "httpx", "aiohttp", "urllib3", "requests", "http", "zipfile", "cvss")


def _audit(requirements: Path, server: OSVTestServer, cache_dir: Path,
           importtime: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "scancache",
               "audit", "-r", str(requirements), "--osv-url", server.url, "--cache-dir", str(cache_dir)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_a_warm_clean_audit_imports_no_http_client_zipfile_or_cvss(osv_server: OSVTestServer,
                                                                     tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==3.1.6\nrequests==2.32.3\nidna==3.10\n", encoding="utf-8")
    cold = _audit(requirements, osv_server, tmp_path / "cache")
    assert cold.returncode == 0, cold.stderr
    assert osv_server.total_requests > 0  # the cold run asked the server: the cache now holds it
    osv_server.reset_counts()

    warm = _audit(requirements, osv_server, tmp_path / "cache", importtime=True)
    assert warm.returncode == 0, warm.stderr
    assert "No known vulnerabilities found in 3 packages" in warm.stdout
    assert osv_server.total_requests == 0  # answered from the disk cache alone
    imported = {line.split("|")[-1].strip() for line in warm.stderr.splitlines()
                if line.startswith("import time:")}
    assert "scancache.vulndb.audit" in imported  # the listing is real: the audit itself is in it
    unwanted = sorted(m for m in imported if m.split(".")[0] in NOT_ON_A_WARM_RUN)
    assert unwanted == []
