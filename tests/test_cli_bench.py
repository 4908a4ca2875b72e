"""`scancache bench --quick`: it runs offline, measures every seed claim, and says how."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scancache.cli._bench_scan import BenchSizes, bench_osv, generated_records, requirements_for
from scancache.cli.bench import CLAIMS, evaluate_claims, render_table
from scancache.vulndb.config import VulnDBConfig
from support import cli_env, run_cli

CLAIM_NAMES = [name for name, _, _, _ in CLAIMS]


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache_dir = tmp_path_factory.mktemp("bench-cache")
    done = run_cli("bench", "--quick", "--json", "--cache-dir", str(cache_dir), env=cli_env(cache_dir))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no terminal, no --progress: no bar, and no warnings
    assert list(cache_dir.iterdir()) == []  # its temporary store is gone
    return json.loads(done.stdout)


def test_bench_reports_every_claim(bench_json: dict[str, Any]) -> None:
    claims = bench_json["claims"]
    assert [c["claim"] for c in claims] == CLAIM_NAMES
    for claim in claims:
        assert claim["verdict"] in ("as claimed", "better than claimed", "below the claim")
        assert claim["measured"] and all(isinstance(v, float) for v in claim["measured"].values())
        assert set(claim["details"]) == set(claim["measured"])
    by_name = {c["claim"]: c for c in claims}
    assert set(by_name["Response time"]["measured"]) == {"DNS", "OSV"}
    assert by_name["Throughput"]["unit"] == "x" and by_name["Startup time"]["unit"] == "%"
    assert bench_json["seconds"] < 60


def test_bench_scans_ran_cold_then_warm(bench_json: dict[str, Any]) -> None:
    dns, osv = bench_json["dns"], bench_json["osv"]
    params = bench_json["parameters"]
    assert params["quick"] is True and params["cache"] == "memory + SQLite"
    cold, warm = dns["scan"]["runs"]
    assert cold["upstream_queries"] == 2 * params["hosts"]  # A and AAAA, once per host
    assert warm["upstream_queries"] == 0  # the next scan is answered from SQLite
    assert cold["failures"] == warm["failures"] == dns["failures"] == 0
    audit_cold, audit_warm = osv["audit"]["runs"]
    assert audit_cold["requests"] >= 1 and audit_warm["requests"] == 0
    assert audit_cold["vulnerable_packages"] == audit_warm["vulnerable_packages"] >= 1
    assert dns["latency_hit_us"]["median"] < dns["latency_miss_us"]["median"]
    assert osv["latency_hit_us"]["median"] < osv["latency_miss_us"]["median"]


def test_bench_startup_compares_eager_and_lazy(bench_json: dict[str, Any]) -> None:
    startup = bench_json["startup"]
    assert "httpx" in startup["modules"]
    assert startup["eager"]["modules_loaded"] > startup["lazy"]["modules_loaded"]
    assert startup["eager"]["rss_mb"] > startup["baseline"]["rss_mb"] > 0


def test_verdicts_follow_the_seed_ranges(bench_json: dict[str, Any]) -> None:
    results = json.loads(json.dumps(bench_json))
    results["startup"]["lazy"]["wall_ms"] = results["startup"]["eager"]["wall_ms"] * 0.3  # 70 %
    results["startup"]["eager"]["rss_mb"] = 100.0
    results["startup"]["lazy"]["rss_mb"] = 80.0  # 20 %: below 40-60 %
    verdicts = {c["claim"]: c for c in evaluate_claims(results)}
    assert verdicts["Startup time"]["measured"] == {"app": 70.0}
    assert verdicts["Startup time"]["verdict"] == "as claimed"
    assert verdicts["Memory usage"]["verdict"] == "below the claim"
    table = render_table({**results, "claims": list(verdicts.values())})
    assert "below the claim" in table and "reduced by 60-80%" in table


def test_bench_table_with_progress(tmp_path: Path) -> None:
    done = run_cli("bench", "--quick", "--progress", "--hosts", "50", "--packages", "10",
                   env=cli_env(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["CLAIM", "SEED", "SAYS"]
    for name, seed_text, _, _ in CLAIMS:
        assert any(line.startswith(name) and seed_text in line for line in lines)
    assert "for 2 scans of 50 hosts" in done.stdout
    assert "bench: done" in done.stderr and "12/12" in done.stderr  # the bar ran to its end


def test_bench_bad_osv_data(tmp_path: Path) -> None:
    done = run_cli("bench", "--quick", "--osv-data", str(tmp_path / "missing.zip"),
                   env=cli_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("scancache: error: OSV data not found")
    assert "Traceback" not in done.stderr


async def test_osv_part_runs_on_generated_records(tmp_path: Path) -> None:
    # What the bench falls back to when an install lacks the shipped sample.
    records = generated_records(12)
    lines = requirements_for(records, 9)
    assert lines[:4] == ["bench-vulnerable-0==1.1", "bench-vulnerable-1==1.1", "bench-vulnerable-2==1.1",
                         "bench-clean-0==1.0.0"]
    steps: list[int] = []
    sizes = BenchSizes(hosts=1, lookups_per_host=1, dns_latency_samples=1, packages=9,
                       osv_latency_samples=3)

    def make_config(cls: Any, namespace: str, **extra: Any) -> Any:
        assert cls is VulnDBConfig
        return cls(cache_type="disk", cache_dir=tmp_path, namespace=namespace, **extra)

    out = await bench_osv(sizes, make_config, lambda: steps.append(1), None)
    assert out["data"] == "generated" and out["records"] == 100
    cold, warm = out["audit"]["runs"]
    assert cold["vulnerable_packages"] == warm["vulnerable_packages"] == 3
    assert cold["requests"] >= 1 and warm["requests"] == 0
    assert len(steps) == 4
