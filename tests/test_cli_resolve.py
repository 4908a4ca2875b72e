"""`scancache resolve` for recon: record types, PTR sweeps, streamed output and resumable runs.

Whole processes against the loopback DNS server, as a user runs them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scancache.testing.dns_server import LoopbackDNSServer
from support import cli_env, run_cli


def rows_of(done: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def server() -> Iterator[LoopbackDNSServer]:
    with LoopbackDNSServer({"a.test": ["192.0.2.1", "2001:db8::1"]}, ttl=300) as s:
        s.add("a.test", "MX", "10 mail.a.test.")
        s.add("a.test", "TXT", "hello")
        for i in range(4):
            s.add(f"{i}.2.0.192.in-addr.arpa", "PTR", f"host{i}.a.test.")
        s.add("*.bulk.test", "A", "192.0.2.50")
        yield s


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "cache")


def test_rows_per_record_type_with_ttls(server, env):
    done = run_cli("resolve", "--nameserver", server.address, "-t", "MX,TXT", "-t", "A", "a.test",
                   env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["type"]: row for row in rows_of(done)}
    assert set(rows) == {"MX", "TXT", "A"}
    assert rows["MX"]["answers"] == [{"type": "MX", "data": "10 mail.a.test.", "ttl": 300}]
    assert rows["TXT"]["answers"][0]["data"] == '"hello"'
    assert rows["A"]["addresses"] == ["192.0.2.1"] and "addresses" not in rows["MX"]
    assert all(row["host"] == "a.test" and row["status"] == "NOERROR" for row in rows.values())
    assert all(row["resolver"] == server.address and row["wildcard"] is None for row in rows.values())


def test_ptr_sweep_of_a_cidr(server, env):
    done = run_cli("resolve", "--nameserver", server.address, "--ptr", "192.0.2.0/30", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["host"]: row for row in rows_of(done)}
    assert set(rows) == {"192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert rows["192.0.2.2"]["type"] == "PTR"
    assert rows["192.0.2.2"]["answers"][0]["data"] == "host2.a.test."
    bad = run_cli("resolve", "--ptr", "192.0.2.0/33", env=env)
    assert bad.returncode == 2 and "--ptr" in bad.stderr


def test_rows_stream_while_the_input_is_still_open(server, env):
    """Rows come out before stdin ends: nothing waits for the whole input."""
    proc = subprocess.Popen([sys.executable, "-m", "scancache", "resolve", "-i", "-", "--rdtype", "A",
                             "--nameserver", server.address], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("first.bulk.test\n")
        proc.stdin.flush()
        row = json.loads(proc.stdout.readline())  # blocks until the row is written (or EOF)
        assert row["host"] == "first.bulk.test" and row["addresses"] == ["192.0.2.50"]
        proc.stdin.write("second.bulk.test\n")
        proc.stdin.close()
        assert json.loads(proc.stdout.readline())["host"] == "second.bulk.test"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_duplicates_and_case_variants_are_asked_once(server, env, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\ufeffA.test\r\na.test.\r\nx.bulk.test\r\nX.BULK.TEST\r\n")
    done = run_cli("resolve", "-i", str(names), "--rdtype", "A", "--nameserver", server.address,
                   env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(row["host"] for row in rows_of(done)) == ["A.test", "x.bulk.test"]
    assert server.total_queries == 2


def _wait_for(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_resume_continues_without_asking_finished_names_again(server, env, tmp_path):
    names = [f"n{i}.bulk.test" for i in range(1, 201)]
    names[99] = "hang.bulk.test"  # line 100 never answers in the first run
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("\n".join(names) + "\n")
    config = tmp_path / "scancache.yaml"
    config.write_text("dns:\n  timeout_seconds: 60\n  attempts: 1\n")
    state = tmp_path / "run.state"
    server.drop("hang.bulk.test")
    args = [sys.executable, "-m", "scancache", "--config", str(config), "resolve", "-i", str(hosts),
            "--rdtype", "A", "--concurrency", "8", "--nameserver", server.address,
            "--resume", str(state)]
    out = tmp_path / "first.jsonl"
    with open(out, "w") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE, env=env)
        try:
            def all_but_one_saved() -> bool:
                try:
                    saved = json.loads(state.read_text())
                except (OSError, ValueError):
                    return False
                return saved["mark"] == 99 and len(saved["done"]) == 100
            _wait_for(all_but_one_saved)
        finally:
            proc.send_signal(signal.SIGKILL)  # interrupted the hard way: no clean-up runs
            proc.wait(timeout=10)
    first = {json.loads(line)["host"] for line in out.read_text().splitlines()}
    assert first == set(names) - {"hang.bulk.test"}
    asked = {name: server.query_count(name) for name in names}
    assert all(count == 1 for name, count in asked.items() if name != "hang.bulk.test")

    server.heal()
    server.add("hang.bulk.test", "A", "192.0.2.51")
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert [row["host"] for row in rows] == ["hang.bulk.test"]
    assert rows[0]["addresses"] == ["192.0.2.51"]
    assert all(server.query_count(n) == 1 for n in names if n != "hang.bulk.test")  # none re-asked
    assert json.loads(state.read_text())["complete"] is True
    done_twice = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60,
                                check=False)
    assert done_twice.returncode == 0 and done_twice.stdout == ""
    assert "already complete" in done_twice.stderr


def test_resume_refuses_a_state_from_another_run(server, env, tmp_path):
    state = tmp_path / "run.state"
    first = run_cli("resolve", "--nameserver", server.address, "--resume", str(state), "a.test",
                    env=env)
    assert first.returncode == 0, first.stderr
    other = run_cli("resolve", "--nameserver", server.address, "--resume", str(state), "b.test",
                    env=env)
    assert other.returncode == 2 and "another run" in other.stderr
    state.write_text("{not json")
    broken = run_cli("resolve", "--nameserver", server.address, "--resume", str(state), "a.test",
                     env=env)
    assert broken.returncode == 2 and "not a resolve state file" in broken.stderr


def test_progress_shows_rate_and_eta(server, env, tmp_path):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"p{i}.bulk.test\n" for i in range(100)))
    done = run_cli("resolve", "-i", str(hosts), "--progress", "--rdtype", "A", "--nameserver",
                   server.address, env=env)
    assert done.returncode == 0, done.stderr
    assert "resolving 100/100 names" in done.stderr and "/s" in done.stderr


def test_resolver_pool_from_a_file_with_a_trusted_resolver(server, env, tmp_path):
    with LoopbackDNSServer({"*.bulk.test": "203.0.113.66", "a.test": "192.0.2.1"}) as liar:
        pool = tmp_path / "resolvers.txt"
        pool.write_text(f"# two resolvers\n{liar.address}\n{server.address}\n")
        done = run_cli("resolve", "--resolvers", str(pool), "--trusted", server.address, "--rdtype",
                       "A", "--rate-limit", "1000", "--resolver-rate-limit", "500", "x.bulk.test",
                       "y.bulk.test", "a.test", env=env)
        assert done.returncode == 0, done.stderr
        rows = {row["host"]: row for row in rows_of(done)}
        assert rows["x.bulk.test"]["addresses"] == ["192.0.2.50"]  # never the liar's answer
        assert rows["a.test"]["addresses"] == ["192.0.2.1"]
        assert rows["a.test"]["resolver"] == "pool of 2"
    lonely = run_cli("resolve", "--trusted", server.address, "a.test", env=env)
    assert lonely.returncode == 2 and "--resolvers" in lonely.stderr
