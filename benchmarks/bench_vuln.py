"""Benchmark: audit 1,000 pinned PyPI packages cold and warm against a loopback OSV server.

    .venv/bin/python benchmarks/bench_vuln.py [--packages 1000] [--warm-runs 5] [--disk] [--pip-audit]

Data: ../shared/data/osv-pypi-all.zip next to the checkout when present (2,661 real PyPI advisories),
else tests/data/osv-pypi-subset.zip. Requirements: every package name the data mentions, pinned
alternately to an affected version and to a fixed one, padded with names no advisory mentions.
Prints requests per endpoint and seconds per phase (each timed phase starts after gc.collect(), so
the cold phase's pending collection is not billed to a warm run), then the median of the warm runs.
Targets: cold = one querybatch per 1,000 queries + one GET per distinct vulnerability id; warm = 0
requests and under 50 ms. --disk also times warm audits from a fresh process's view.
--pip-audit also times `pip-audit --no-deps --disable-pip -s osv --osv-url ...` on the same file
(one /v1/query per package, no cache), when pip-audit is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FULL_ZIP = ROOT.parent / "shared" / "data" / "osv-pypi-all.zip"
SUBSET_ZIP = ROOT / "tests" / "data" / "osv-pypi-subset.zip"


def build_requirements(records: dict[str, dict[str, Any]], count: int) -> list[str]:
    """count pinned lines: affected and fixed versions of advisory packages, then clean padding.

    Only PEP 440 versions are pinned (the data has a few that are not; pip would refuse them).
    """
    from scancache.vulndb.ranges import pep440

    pins: dict[str, str] = {}
    for n, record in enumerate(sorted(records.values(), key=lambda r: r["id"])):
        for entry in record.get("affected") or ():
            name = re.sub(r"[-_.]+", "-", entry["package"]["name"]).lower()
            if name in pins:
                continue
            fixed = [e["fixed"] for r in entry.get("ranges") or () for e in r.get("events") or ()
                     if "fixed" in e and pep440(e["fixed"]) is not None]
            listed = [v for v in entry.get("versions") or [] if pep440(v) is not None]
            if n % 2 and fixed:
                pins[name] = fixed[-1]
            elif listed:
                pins[name] = listed[len(listed) // 2]
            elif fixed:
                pins[name] = fixed[-1]
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())][:count]
    lines += [f"scancache-bench-clean-{i}==1.0.0" for i in range(count - len(lines))]
    return lines


class ServerProcess:
    """The loopback server in a child process (its own GIL, as a real API would have); counters are
    read over its control endpoint."""

    def __init__(self, source: Path, latency: float = 0.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "scancache.testing.osv_server", str(source),
                                      "--lifetime", "3600", "--latency", str(latency)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.nvd_url = self.proc.stdout.readline().strip()
        self.requests: dict[str, int] = {}

    def _control(self, method: str) -> None:
        import httpx

        from scancache.testing.osv_server import CONTROL_PATH

        self.requests = httpx.request(method, self.url + CONTROL_PATH).json()["requests"]

    def reset_counts(self) -> None:
        self._control("POST")

    @property
    def total_requests(self) -> int:
        self._control("GET")
        return sum(self.requests.values())

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def forget_process_memos() -> None:
    """Empty the in-process memos (parsed pins, canonical queries, findings, parsed versions), so a
    phase sees what a fresh process would: only the cache's own data."""
    from scancache.vulndb import audit, query, ranges
    from scancache.vulndb.inputs import requirements

    for module, memo in ((requirements, "_PIN_MEMO"), (audit, "_FINDINGS_MEMO"), (audit, "_FIXED_MEMO")):
        getattr(module, memo, {}).clear()
    for function in (getattr(query, "pypi_query", None), getattr(query, "_pep440_canonical", None),
                     getattr(query, "_pep440_normal", None), getattr(ranges, "pep440", None)):
        if hasattr(function, "cache_clear"):
            function.cache_clear()  # type: ignore[union-attr]


async def audit_phase(vulndb: Any, server: Any, lines: list[str], label: str) -> tuple[Any, float]:
    """One timed audit: (report, milliseconds). The garbage of earlier phases is collected first
    (the cold phase leaves a full collection pending that would otherwise land in a warm run);
    the collector stays enabled during the audit itself."""
    server.reset_counts()
    gc.collect()
    start = time.perf_counter()
    report = await vulndb.audit(lines)
    milliseconds = (time.perf_counter() - start) * 1000
    total = server.total_requests
    print(f"{label:<10} {milliseconds:9.1f} ms  requests {total:5d}  "
          f"{dict(sorted(server.requests.items()))}  vulnerable packages "
          f"{len(report.vulnerable_packages)}, findings {len(report.vulnerable)}")
    return report, milliseconds


def summary(label: str, times: list[float], target: str) -> None:
    print(f"{label:<10} median {statistics.median(times):7.1f} ms, min {min(times):.1f}, "
          f"max {max(times):.1f} over {len(times)} runs  ({target})")


def run_pip_audit(lines: list[str], server: Any, timeout: float) -> None:
    exe = shutil.which("pip-audit", path=str(Path(sys.executable).parent)) or shutil.which("pip-audit")
    if exe is None:
        print("pip-audit  skipped: not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [exe, "-r", str(req), "--no-deps", "--disable-pip", "-s", "osv", "--osv-url",
               f"{server.url}/v1/query", "--progress-spinner", "off", "--cache-dir", tmp, "-f", "json"]
        server.reset_counts()
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"pip-audit  gave up after {timeout:.0f} s ({server.total_requests} requests made)")
            return
        seconds = time.perf_counter() - start
        total = server.total_requests
        try:
            deps = json.loads(done.stdout)["dependencies"]
            status = (f"vulnerable packages {sum(1 for d in deps if d.get('vulns'))}, "
                      f"findings {sum(len(d.get('vulns') or ()) for d in deps)}")
        except (ValueError, KeyError):
            status = "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:200]
        print(f"pip-audit  {seconds * 1000:9.1f} ms  requests {total:5d}  {dict(server.requests)}  {status}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--disk", action="store_true", help="also time a warm run from a fresh process's "
                        "view: a new VulnerabilityDBCache over the same SQLite file")
    parser.add_argument("--warm-runs", type=int, default=5, help="warm audits to time (median reported)")
    parser.add_argument("--pip-audit", action="store_true")
    parser.add_argument("--pip-audit-timeout", type=float, default=300)
    parser.add_argument("--in-process", action="store_true",
                        help="run the server in this process (shares the GIL with the client)")
    args = parser.parse_args()

    from scancache.config import CacheType
    from scancache.testing.osv_server import OSVTestServer, load_records
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig

    source = FULL_ZIP if FULL_ZIP.exists() else SUBSET_ZIP
    records = load_records(source)
    lines = build_requirements(records, args.packages)
    print(f"data: {source.name} ({len(records)} records); {len(lines)} pinned requirements")
    with (OSVTestServer(records) if args.in_process else ServerProcess(source)) as server:
        fields = {"osv_url": server.url, "nvd_url": server.nvd_url, "max_size": 100_000}
        async with VulnerabilityDBCache(VulnDBConfig(**fields)) as vulndb:
            report, _ = await audit_phase(vulndb, server, lines, "cold")
            distinct = {r["id"] for res in await vulndb.query_many(
                [{"package": d.normalized_name, "ecosystem": "PyPI", "version": d.version}
                 for d in report.dependencies]) for r in res}
            expected = -(-len(report.dependencies) // 1000) + len(distinct)
            print(f"           target cold requests: at most {expected} "
                  f"({-(-len(report.dependencies) // 1000)} querybatch + {len(distinct)} distinct ids; "
                  f"a package naming several is one /v1/query)")
            warm = [(await audit_phase(vulndb, server, lines, f"warm #{n + 1}"))[1]
                    for n in range(args.warm_runs)]
            summary("warm", warm, "target: 0 requests and < 50 ms")
        if args.disk:
            with tempfile.TemporaryDirectory() as tmp:
                disk = {**fields, "cache_type": CacheType.DISK, "cache_dir": tmp}
                async with VulnerabilityDBCache(VulnDBConfig(**disk)) as vulndb:
                    await audit_phase(vulndb, server, lines, "disk cold")
                times = []
                for n in range(args.warm_runs):
                    # A fresh process's view each time: a new cache object over the same file, and
                    # none of this process's memos.
                    forget_process_memos()
                    async with VulnerabilityDBCache(VulnDBConfig(**disk)) as vulndb:
                        times.append((await audit_phase(vulndb, server, lines, f"disk #{n + 1}"))[1])
                summary("disk warm", times, "new VulnerabilityDBCache over the same file, memos emptied")
        if args.pip_audit:
            run_pip_audit(lines, server, args.pip_audit_timeout)


if __name__ == "__main__":
    asyncio.run(main())
