"""Fixture for `scancache audit` tests: the command run in this process against the loopback OSV
server, with a private disk cache and no config file from the environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scancache.cli.main import main
from scancache.testing.osv_server import OSVTestServer

AuditRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def audit_cli(osv_server: OSVTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> AuditRun:
    """Run `scancache audit ARGS` in this process: returns (exit status, stdout, stderr)."""
    for name in ("SCANCACHE_CONFIG", "SCANCACHE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCANCACHE_OSV_URL", osv_server.url)
    monkeypatch.setenv("SCANCACHE_CACHE_DIR", str(tmp_path / "cache"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["audit", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
