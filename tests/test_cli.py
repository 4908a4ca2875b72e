"""The scancache command as a user runs it: a subprocess against a loopback DNS server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scancache.testing.dns_server import LoopbackDNSServer
from support import assert_one_line_error, cli_env, run_cli

HEAVY = ("rich", "httpx", "dns", "redis", "zstandard", "msgpack", "yaml", "packaging")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "cache")


@pytest.fixture
def dns() -> LoopbackDNSServer:
    with LoopbackDNSServer({"a.test": ["192.0.2.1", "2001:db8::1"], "b.test": "192.0.2.2"},
                           ttl=300) as server:
        server.servfail("broken.test")
        yield server


# ---------------------------------------------------------------------------------------- help
def test_help_imports_nothing_heavy(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "scancache", "--help"],
                          capture_output=True, text=True, env=env, timeout=30, check=True)
    assert "resolve" in done.stdout and "bench" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []
    assert not any(m.startswith("scancache.cli.") and m != "scancache.cli.main" for m in imported)


@pytest.mark.parametrize("command", [["resolve"], ["audit"], ["mirror", "import"], ["cache", "stats"],
                                     ["cache", "warm"], ["imports", "profile"], ["bench"], ["metrics"]])
def test_every_command_has_help(command: list[str], env: dict[str, str]) -> None:
    done = run_cli(*command, "--help", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: scancache " + " ".join(command))


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("args", [
    [],                                        # no command
    ["frobnicate"],                            # unknown command
    ["resolve", "--bogus", "a.test"],          # unknown option
    ["resolve", "--concurrency", "0", "x"],    # bad value
    ["resolve", "--rdtype", "NOSUCH", "x"],    # unknown record type
    ["audit", "--fail-on", "severe"],          # bad severity
    ["metrics", "--serve", "99999"],           # bad port
    ["cache"],                                 # missing action
])
def test_usage_errors_are_one_line(args: list[str], env: dict[str, str]) -> None:
    assert_one_line_error(run_cli(*args, env=env))


def test_missing_config_file(env: dict[str, str], tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli("--config", str(tmp_path / "nope.toml"), "cache", "stats",
                                         env=env))
    assert "nope.toml" in line


@pytest.mark.parametrize("text, expected", [
    ("[cache\nttl_seconds = 1", "not valid TOML"),
    ("[cache]\nttl_seconds = -5\n", "ttl_seconds"),
    ("[cache]\nttl_secondz = 5\n", "ttl_secondz"),
    ("[nonsense]\nx = 1\n", "nonsense"),
])
def test_bad_config_file(text: str, expected: str, env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "scancache.toml"
    config.write_text(text)
    line = assert_one_line_error(run_cli("--config", str(config), "cache", "stats", env=env))
    assert expected in line


def test_verbose_shows_the_traceback(env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("-v", "--config", str(tmp_path / "nope.toml"), "cache", "stats", env=env)
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("scancache: error: ")


# ---------------------------------------------------------------------------------------- resolve
def test_resolve_jsonl_then_served_from_the_disk_cache(dns: LoopbackDNSServer,
                                                       env: dict[str, str]) -> None:
    done = run_cli("resolve", "--nameserver", dns.address, "a.test", "b.test", env=env)
    assert done.returncode == 0, done.stderr
    rows = {row["host"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert sorted(rows["a.test"]["addresses"]) == ["192.0.2.1", "2001:db8::1"]
    assert rows["a.test"]["status"] == "NOERROR" and rows["a.test"]["cached"] is False
    assert rows["b.test"]["addresses"] == ["192.0.2.2"]
    sent = dns.total_queries
    assert sent >= 2
    again = run_cli("resolve", "--nameserver", dns.address, "a.test", "B.TEST.", env=env)
    assert again.returncode == 0
    assert len(again.stdout.splitlines()) == 2
    assert dns.total_queries == sent  # a new process answered from the SQLite cache


def test_resolve_table_from_file_in_input_order(dns: LoopbackDNSServer, env: dict[str, str],
                                                tmp_path: Path) -> None:
    names = tmp_path / "hosts.txt"
    names.write_text("# scan targets\nb.test\n\na.test   # the main one\nb.test\n")
    done = run_cli("resolve", "-i", str(names), "--format", "table", "--rdtype", "a",
                   "--nameserver", dns.address, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "STATUS", "ANSWERS"]
    assert [line.split()[0] for line in lines[1:]] == ["b.test", "a.test"]
    assert lines[2].split()[1:] == ["A", "NOERROR", "192.0.2.1"]  # A only


def test_resolve_names_from_stdin(dns: LoopbackDNSServer, env: dict[str, str]) -> None:
    done = run_cli("resolve", "-i", "-", "--nameserver", dns.address, env=env, stdin="a.test\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["host"] == "a.test"


def test_resolve_failure_exits_1_and_reports_it(dns: LoopbackDNSServer, env: dict[str, str]) -> None:
    done = run_cli("resolve", "--nameserver", dns.address, "a.test", "broken.test", env=env)
    assert done.returncode == 1
    rows = {row["host"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert "SERVFAIL" in rows["broken.test"]["error"]
    assert rows["broken.test"]["status"] == "SERVFAIL"
    assert rows["a.test"]["addresses"]


def test_resolve_bad_name_sends_nothing(dns: LoopbackDNSServer, env: dict[str, str]) -> None:
    line = assert_one_line_error(run_cli("resolve", "--nameserver", dns.address, "a.test",
                                         "bad..name", env=env))
    assert "bad..name" in line
    assert dns.total_queries == 0


@pytest.mark.parametrize("args, expected", [
    (["resolve", "-i", "missing-hosts.txt"], "not found"),
    (["resolve", "--nameserver", "not-an-ip", "a.test"], "not-an-ip"),
    (["resolve"], "no names"),
])
def test_resolve_input_errors(args: list[str], expected: str, env: dict[str, str]) -> None:
    assert expected in assert_one_line_error(run_cli(*args, env=env))


def test_resolve_progress_bar_on_request(dns: LoopbackDNSServer, env: dict[str, str],
                                        tmp_path: Path) -> None:
    dns.add("*.many.test", "A", "192.0.2.9")
    names = tmp_path / "many.txt"
    names.write_text("".join(f"h{i}.many.test\n" for i in range(60)))
    done = run_cli("resolve", "-i", str(names), "--progress", "--nameserver", dns.address, env=env)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 60
    assert "resolving" in done.stderr and "60/60" in done.stderr
    quiet = run_cli("resolve", "-i", str(names), "--nameserver", dns.address, env=env)
    assert quiet.stderr == ""  # not a terminal, not asked: no bar


def test_config_file_and_environment_choose_the_nameserver(dns: LoopbackDNSServer,
                                                           env: dict[str, str],
                                                           tmp_path: Path) -> None:
    config = tmp_path / "scancache.yaml"
    config.write_text(f"dns:\n  nameservers: ['{dns.address}']\n")
    done = run_cli("--config", str(config), "resolve", "a.test", env=env)
    assert done.returncode == 0, done.stderr
    from_env = run_cli("resolve", "b.test", env={**env, "SCANCACHE_DNS_NAMESERVERS": dns.address})
    assert from_env.returncode == 0, from_env.stderr
    assert dns.query_count("a.test") >= 1 and dns.query_count("b.test") >= 1


def test_global_options_work_after_the_command(dns: LoopbackDNSServer, env: dict[str, str],
                                               tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    done = run_cli("resolve", "--cache-dir", str(elsewhere), "--nameserver", dns.address, "a.test",
                   env=env)
    assert done.returncode == 0, done.stderr
    assert (elsewhere / "scancache.sqlite3").exists()
    memory = run_cli("--cache-type", "memory", "resolve", "--cache-dir", str(tmp_path / "mem"),
                     "--nameserver", dns.address, "a.test", env=env)
    assert memory.returncode == 0
    assert not (tmp_path / "mem").exists()  # a memory cache writes nothing


# ---------------------------------------------------------------------------------------- cache
def test_cache_stats_clear_and_warm(dns: LoopbackDNSServer, env: dict[str, str],
                                    tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("a.test\nb.test\n")
    warm = run_cli("cache", "warm", "--hosts", str(hosts), "--nameserver", dns.address, env=env)
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout)["dns"]["resolved"] == 2
    sent = dns.total_queries

    stats = json.loads(run_cli("cache", "stats", "--format", "json", env=env).stdout)
    assert stats["caches"]["dns"]["size"] == 2
    assert stats["caches"]["dns"]["backend"] == "disk"
    table = run_cli("cache", "stats", env=env)
    assert table.returncode == 0
    assert any(line.split()[:3] == ["dns", "disk", "2"] for line in table.stdout.splitlines())

    resolved = run_cli("resolve", "--nameserver", dns.address, "a.test", "b.test", env=env)
    assert resolved.returncode == 0
    assert dns.total_queries == sent  # warmed: nothing asked upstream

    cleared = run_cli("cache", "clear", "--only", "dns", env=env)
    assert json.loads(cleared.stdout) == {"removed": {"dns": 2}}
    after = json.loads(run_cli("cache", "stats", "--format", "json", env=env).stdout)
    assert after["caches"]["dns"]["size"] == 0


def test_cache_warm_needs_something(env: dict[str, str]) -> None:
    assert "nothing to warm" in assert_one_line_error(run_cli("cache", "warm", env=env))


# ---------------------------------------------------------------------------------------- imports
def test_imports_profile_of_a_stdlib_module(env: dict[str, str]) -> None:
    done = run_cli("imports", "profile", "json", "email.parser", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("json: ")
    assert "email.parser: " in done.stdout and " ms" in done.stdout
    data = json.loads(run_cli("imports", "profile", "--format", "json", "json", env=env).stdout)
    assert data[0]["module"] == "json" and data[0]["ok"] is True
    assert data[0]["tree"][0]["module"] == "json"
    assert data[0]["total_us"] > 0


@pytest.mark.parametrize("name", ["no_such_module_xyz", "os;print(1)"])
def test_imports_profile_bad_module(name: str, env: dict[str, str]) -> None:
    assert name in assert_one_line_error(run_cli("imports", "profile", name, env=env))
