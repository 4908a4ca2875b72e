"""A failed online audit ends with exit status 2, never with a crash of the interpreter at exit.

reqwest's runtime thread (the default HTTP transport) hands each result back holding the GIL; a
process that exits right after the last (failed) request could finalize the interpreter under it:
"Fatal Python error: PyGILState_Release", status 134, in about 1 run of 3 once the warm path made a
failing run exit fast. PyreqwestTransport.aclose lets that thread finish first.
"""

from __future__ import annotations

import socket
from pathlib import Path

from support import cli_env, run_cli


def test_a_refused_audit_exits_2_every_time(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.4\n", encoding="utf-8")
    config = tmp_path / "scancache.toml"
    config.write_text("[vulndb]\nmax_retries = 0\n", encoding="utf-8")  # fail at the first refusal
    # A port bound here but never listened on: connections to it are refused at once, and no other
    # process (another test's server) can take it while this socket holds it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        statuses = []
        for _ in range(10):
            done = run_cli("--config", str(config), "audit", "-r", str(requirements), "--cache-type",
                           "memory", "--osv-url", url, env=cli_env(tmp_path / "cache"))
            assert "Fatal Python error" not in done.stderr, done.stderr
            statuses.append(done.returncode)
    assert statuses == [2] * 10
