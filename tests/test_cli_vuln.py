"""`scancache audit`, `mirror` and `cache warm -r` as subprocesses against a loopback OSV server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scancache.testing.osv_server import OSVTestServer
from support import assert_one_line_error, cli_env, run_cli

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "scancache" / "testing" / "data" / \
    "osv-pypi-sample.zip"
VULNERABLE = "jinja2==2.4\nrequests==2.0.0\n"  # PYSEC-2014-8/-82 and PYSEC-2014-13/-14 in SAMPLE
CLEAN = "requests==2.31.0\nsome-unknown-package==1.0\n"


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def osv() -> OSVTestServer:
    with OSVTestServer.from_zip(SAMPLE) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, osv: OSVTestServer) -> dict[str, str]:
    osv.reset_counts()
    return cli_env(tmp_path / "cache", SCANCACHE_OSV_URL=osv.url)


@pytest.fixture
def reqs(tmp_path: Path) -> dict[str, Path]:
    vulnerable = tmp_path / "vulnerable.txt"
    vulnerable.write_text("# pinned\n" + VULNERABLE + "flask>=1.0\n")
    clean = tmp_path / "clean.txt"
    clean.write_text(CLEAN)
    return {"vulnerable": vulnerable, "clean": clean}


def test_audit_clean_exits_0(env: dict[str, str], reqs: dict[str, Path]) -> None:
    done = run_cli("audit", "-r", str(reqs["clean"]), env=env)
    assert done.returncode == 0, done.stderr
    assert "No known vulnerabilities found in 2 packages (no entries skipped)." in done.stdout


def test_audit_vulnerable_exits_1_with_a_table(env: dict[str, str], reqs: dict[str, Path]) -> None:
    done = run_cli("audit", "-r", str(reqs["vulnerable"]), env=env)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["PACKAGE", "VERSION", "ID"]
    ids = {line.split()[2] for line in lines[1:] if line.strip() and not line.startswith("Found")}
    assert ids == {"PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2014-13", "PYSEC-2014-14"}
    assert lines[-1] == "Found 4 known vulnerabilities in 2 of 2 packages (1 skipped: 1 unpinned)."
    assert "vulnerable.txt:4: skipped" in done.stderr and "flask>=1.0" in done.stderr  # a note


def test_audit_json_then_answered_from_the_cache(env: dict[str, str], osv: OSVTestServer,
                                                 reqs: dict[str, Path]) -> None:
    done = run_cli("audit", "-r", str(reqs["vulnerable"]), "--format", "json", env=env)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert {d["name"] for d in report["dependencies"]} == {"jinja2", "requests"}
    assert {v["id"] for v in report["vulnerabilities"]} >= {"PYSEC-2014-8", "PYSEC-2014-13"}
    assert report["vulnerable_packages"] == 2
    sent = osv.total_requests
    assert sent >= 1
    again = run_cli("audit", "-r", str(reqs["vulnerable"]), "--format", "json", env=env)
    assert again.returncode == 1
    assert json.loads(again.stdout)["vulnerabilities"] == report["vulnerabilities"]
    assert osv.total_requests == sent  # the next run asked OSV nothing


def test_audit_reads_stdin(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "scancache", "audit", "-r", "-"], input=VULNERABLE,
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1, done.stderr


def test_audit_errors_exit_2(env: dict[str, str], reqs: dict[str, Path], tmp_path: Path) -> None:
    assert "not found" in assert_one_line_error(run_cli("audit", "-r", str(tmp_path / "no.txt"),
                                                        env=env))
    assert "directory" in assert_one_line_error(run_cli("audit", "-r", str(tmp_path), env=env))
    config = tmp_path / "fast.toml"
    config.write_text("[vulndb]\nmax_retries = 0\ntimeout_seconds = 5\n")
    down = run_cli("--config", str(config), "audit", "-r", str(reqs["vulnerable"]),
                   env={**env, "SCANCACHE_OSV_URL": closed_port_url()})
    assert_one_line_error(down)
    assert "mirror not found" in assert_one_line_error(
        run_cli("audit", "-r", str(reqs["clean"]), "--mirror", str(tmp_path / "none.db"), env=env))


def test_mirror_import_then_audit_offline(env: dict[str, str], osv: OSVTestServer,
                                          reqs: dict[str, Path], tmp_path: Path) -> None:
    mirror = tmp_path / "osv-mirror.db"
    done = run_cli("mirror", "import", str(SAMPLE), "--mirror-db", str(mirror), env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["added"] == summary["records"] == 120

    offline = {**env, "SCANCACHE_OSV_URL": closed_port_url()}
    audited = run_cli("audit", "-r", str(reqs["vulnerable"]), "--mirror", str(mirror),
                      "--format", "json", env=offline)
    assert audited.returncode == 1, audited.stderr
    assert {v["id"] for v in json.loads(audited.stdout)["vulnerabilities"]} == \
        {"PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2014-13", "PYSEC-2014-14"}
    assert run_cli("audit", "-r", str(reqs["clean"]), "--mirror", str(mirror), env=offline
                   ).returncode == 0
    assert osv.total_requests == 0

    update = run_cli("mirror", "update", str(SAMPLE), "--mirror-db", str(mirror), env=env)
    assert update.returncode == 0, update.stderr
    assert json.loads(update.stdout)["unchanged"] == 120


def test_audit_mirror_straight_from_a_zip(env: dict[str, str], reqs: dict[str, Path]) -> None:
    offline = {**env, "SCANCACHE_OSV_URL": closed_port_url()}
    done = run_cli("audit", "-r", str(reqs["vulnerable"]), "--mirror", str(SAMPLE), env=offline)
    assert done.returncode == 1, done.stderr


def test_mirror_default_path_is_in_the_cache_dir(env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("mirror", "import", str(SAMPLE), env=env)
    assert done.returncode == 0, done.stderr
    assert Path(json.loads(done.stdout)["mirror"]) == tmp_path / "cache" / "osv-mirror.sqlite3"
    stats = json.loads(run_cli("cache", "stats", "--format", "json", env=env).stdout)
    assert stats["mirror"]["records"] == 120


def test_mirror_errors(env: dict[str, str], tmp_path: Path) -> None:
    not_zip = tmp_path / "records.zip"
    not_zip.write_text("not a zip")
    assert "not an OSV all.zip" in assert_one_line_error(
        run_cli("mirror", "import", str(not_zip), "--mirror-db", str(tmp_path / "m.db"), env=env))
    assert "not found" in assert_one_line_error(
        run_cli("mirror", "import", str(tmp_path / "none.zip"), env=env))
    assert "no mirror" in assert_one_line_error(
        run_cli("mirror", "update", str(SAMPLE), "--mirror-db", str(tmp_path / "new.db"), env=env))


def test_cache_warm_requirements_then_audit_asks_nothing(env: dict[str, str], osv: OSVTestServer,
                                                         reqs: dict[str, Path]) -> None:
    warm = run_cli("cache", "warm", "-r", str(reqs["vulnerable"]), env=env)
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout)["vulndb"] == {"packages": 2, "vulnerable_packages": 2,
                                                 "skipped_lines": 1}
    sent = osv.total_requests
    assert run_cli("audit", "-r", str(reqs["vulnerable"]), env=env).returncode == 1
    assert osv.total_requests == sent


def test_audit_progress_bar_goes_to_stderr_and_leaves_json_clean(env: dict[str, str],
                                                                 reqs: dict[str, Path]) -> None:
    done = run_cli("audit", "-r", str(reqs["vulnerable"]), "--format", "json", "--progress", env=env)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["vulnerable_packages"] == 2
    assert "fetching advisories" in done.stderr
