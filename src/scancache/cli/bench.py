"""`scancache bench`: the seed's performance claims next to what this machine measures.

Needs no internet and no server of the user's: it starts a loopback DNS server and a loopback OSV
server (serving the OSV records shipped in scancache.testing/data, or --osv-data), keeps its caches
in memory + SQLite in a temporary directory (or under --cache-dir), scans cold and warm, starts a
small app eager and lazy, and prints one table. `--json` prints every figure; `--quick` is a short
run for tests and CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scancache.cli._bench_scan import BenchSizes, bench_dns, bench_osv, builtin_osv_data
from scancache.cli._bench_startup import bench_startup
from scancache.cli._common import CommandError, Progress, format_table, progress_wanted
from scancache.cli._components import check_osv_dump
from scancache.env import setting

__all__ = ["CLAIMS", "run", "evaluate_claims", "render_table"]

DEFAULT = BenchSizes(hosts=5000, lookups_per_host=3, dns_latency_samples=300, packages=1000,
                     osv_latency_samples=100)
QUICK = BenchSizes(hosts=200, lookups_per_host=3, dns_latency_samples=50, packages=30,
                   osv_latency_samples=15)
STARTUP_RUNS = {"default": 5, "quick": 2}

#: (name, what the seed says, its range, "reduction" in % or "factor").
CLAIMS = (
    ("Startup time", "reduced by 60-80%", (60.0, 80.0), "reduction"),
    ("Memory usage", "40-60% reduction", (40.0, 60.0), "reduction"),
    ("Response time", "80-95% reduction for cached queries", (80.0, 95.0), "reduction"),
    ("Network usage", "70-90% reduction in redundant requests", (70.0, 90.0), "reduction"),
    ("Throughput", "3-5x improvement", (3.0, 5.0), "factor"),
)


def _reduction(before: float, after: float) -> float:
    return round(100.0 * (1.0 - after / before), 1) if before > 0 else 0.0


def _factor(before: float, after: float) -> float:
    return round(after / before, 1) if before > 0 else 0.0


def _measures(results: dict[str, Any]) -> dict[str, list[tuple[str, float, str]]]:
    """{claim: [(part, value, how it was measured)]} from the raw results."""
    startup, dns, osv = results["startup"], results["dns"], results["osv"]
    eager, lazy = startup["eager"], startup["lazy"]
    dns_scan, audit = dns["scan"], osv["audit"]
    return {
        "Startup time": [("app", _reduction(eager["wall_ms"], lazy["wall_ms"]),
                          f"eager {eager['wall_ms']} ms -> lazy {lazy['wall_ms']} ms to ready "
                          f"({len(startup['modules'])} modules; bare interpreter "
                          f"{startup['baseline']['wall_ms']} ms)")],
        "Memory usage": [("app", _reduction(eager["rss_mb"], lazy["rss_mb"]),
                          f"eager {eager['rss_mb']} MB -> lazy {lazy['rss_mb']} MB resident at ready")],
        "Response time": [
            ("DNS", _reduction(dns["latency_miss_us"]["median"], dns["latency_hit_us"]["median"]),
             f"median {dns['latency_miss_us']['median']} us uncached -> "
             f"{dns['latency_hit_us']['median']} us cached"),
            ("OSV", _reduction(osv["latency_miss_us"]["median"], osv["latency_hit_us"]["median"]),
             f"median {osv['latency_miss_us']['median']} us uncached -> "
             f"{osv['latency_hit_us']['median']} us cached")],
        "Network usage": [
            ("DNS", _reduction(dns_scan["queries_without_cache"], dns_scan["queries_with_cache"]),
             f"{dns_scan['queries_with_cache']} queries instead of {dns_scan['queries_without_cache']} "
             f"for 2 scans of {dns_scan['hosts']} hosts x {dns_scan['lookups_per_host']} lookups"),
            ("OSV", _reduction(audit["requests_without_cache"], audit["requests_with_cache"]),
             f"{audit['requests_with_cache']} requests instead of {audit['requests_without_cache']} "
             f"(one /v1/query per package) for 2 audits of {audit['packages']} packages")],
        "Throughput": [
            ("DNS", _factor(dns["throughput_miss_qps"], dns["throughput_hit_qps"]),
             f"{dns['throughput_miss_qps']:.0f} -> {dns['throughput_hit_qps']:.0f} lookups/s"),
            ("OSV", _factor(osv["throughput_cold_pps"], osv["throughput_warm_pps"]),
             f"{osv['throughput_cold_pps']:.0f} -> {osv['throughput_warm_pps']:.0f} packages/s audited")],
    }


def _verdict(values: list[float], low: float, high: float) -> str:
    if any(v < low for v in values):
        return "below the claim"
    if all(v > high for v in values):
        return "better than claimed"
    return "as claimed"


def evaluate_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per seed claim: claim, seed, range, unit, measured parts, verdict."""
    measures = _measures(results)
    rows = []
    for name, seed_text, (low, high), kind in CLAIMS:
        parts = measures[name]
        rows.append({
            "claim": name, "seed": seed_text, "seed_range": [low, high],
            "unit": "%" if kind == "reduction" else "x",
            "measured": {part: value for part, value, _ in parts},
            "details": {part: how for part, _, how in parts},
            "verdict": _verdict([value for _, value, _ in parts], low, high),
        })
    return rows


def _cell(claim: dict[str, Any]) -> str:
    unit = claim["unit"]
    parts = claim["measured"]
    shown = [f"{value:g}{unit}" if len(parts) == 1 else f"{part} {value:g}{unit}"
             for part, value in parts.items()]
    return ", ".join(shown)


def render_table(results: dict[str, Any]) -> str:
    """The claims table and how each figure was measured, as plain text."""
    rows = [("CLAIM", "SEED SAYS", "MEASURED HERE", "VERDICT")]
    rows += [(c["claim"], c["seed"], _cell(c), c["verdict"]) for c in results["claims"]]
    lines = format_table(rows, rule=True)
    machine, params = results["machine"], results["parameters"]
    lines += ["", f"Measured on {machine['cpus']} CPUs, Python {machine['python']}, "
                  f"{machine['platform']}; caches: {params['cache']}; loopback servers, no added "
                  f"network latency; {results['seconds']:.1f} s in all.", "How:"]
    for claim in results["claims"]:
        for part, how in claim["details"].items():
            label = claim["claim"] if len(claim["details"]) == 1 else f"{claim['claim']} ({part})"
            lines.append(f"  {label}: {how}")
    return "\n".join(lines)


def _sizes(args: argparse.Namespace) -> BenchSizes:
    sizes = QUICK if args.quick else DEFAULT
    overrides: dict[str, int] = {}
    if args.hosts:
        overrides.update(hosts=args.hosts,
                         dns_latency_samples=min(sizes.dns_latency_samples, args.hosts))
    if args.packages:
        overrides.update(packages=args.packages,
                         osv_latency_samples=min(sizes.osv_latency_samples, args.packages))
    import dataclasses

    return dataclasses.replace(sizes, **overrides)


def _osv_data(args: argparse.Namespace) -> Path | None:
    if not args.osv_data:
        return builtin_osv_data()
    return check_osv_dump(Path(args.osv_data).expanduser(), "OSV data")


def _describe_cache(cache_type: str, redis_url: str | None) -> str:
    if cache_type == "hybrid":
        return "memory + Redis" if redis_url else "memory + SQLite"
    return {"disk": "SQLite", "redis": "Redis", "memory": "memory"}.get(cache_type, cache_type)


def _measure(args: argparse.Namespace, sizes: BenchSizes, workdir: str, bar: Progress) -> dict[str, Any]:
    cache_type = args.cache_type or "hybrid"
    redis_url = args.redis_url or setting("redis_url")
    max_size = max(1000, 4 * (sizes.hosts + sizes.packages))

    def make_config(cls: Any, namespace: str, **extra: Any) -> Any:
        return cls(cache_type=cache_type, cache_dir=workdir, namespace=namespace, max_size=max_size,
                   redis_url=redis_url, **extra)

    results: dict[str, Any] = {}
    bar.describe("DNS: cold and warm")
    results["dns"] = asyncio.run(bench_dns(sizes, make_config, bar.advance))
    bar.describe("OSV: cold and warm")
    results["osv"] = asyncio.run(bench_osv(sizes, make_config, bar.advance, _osv_data(args)))
    bar.describe("startup: eager and lazy")
    runs = STARTUP_RUNS["quick" if args.quick else "default"]
    try:
        results["startup"] = bench_startup(runs, bar.advance)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    results["parameters"] = {**{k: getattr(sizes, k) for k in sizes.__dataclass_fields__},
                             "startup_runs": runs, "quick": bool(args.quick),
                             "cache": _describe_cache(cache_type, redis_url)}
    return results


def run(args: argparse.Namespace) -> int:
    """Run every measurement, then print the table (or --json)."""
    sizes = _sizes(args)
    _osv_data(args)  # a bad --osv-data fails before anything starts
    if args.cache_dir:
        Path(args.cache_dir).expanduser().mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs = STARTUP_RUNS["quick" if args.quick else "default"]
    bar = Progress(progress_wanted(args))
    bar.start("bench", total=6 + 4 + runs)
    try:
        with tempfile.TemporaryDirectory(prefix="scancache-bench-", dir=args.cache_dir) as workdir:
            results = _measure(args, sizes, workdir, bar)
        bar.describe("bench: done")
    finally:
        bar.stop()
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count()}
    results["seconds"] = round(time.perf_counter() - started, 2)
    results["claims"] = evaluate_claims(results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render_table(results))
    sys.stdout.flush()
    return 0
