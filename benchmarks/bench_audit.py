"""Benchmark: `scancache audit` against uv audit and pip-audit, whole processes, side by side.

    .venv/bin/python benchmarks/bench_audit.py [--pins 30,300,1000] [--latency 0.05,0] [--repeat 3]
        [--warm-repeat 15]

Each tool audits the same generated pins (bench_vuln.build_requirements: affected and fixed versions
of packages the data names, padded with clean names) against the project's loopback OSV server,
started in another process with `--latency` seconds added to every answer (a network round trip):
- scancache: `scancache audit -r FILE --format json --osv-url URL`, the command pip installed beside
  this Python (disk cache in a fresh directory for the cold run, the same directory for the warm runs);
- uv (the `uv` package from PyPI, when installed): `uv audit --frozen --service-url URL/
  --output-format json --preview-features audit-command,json-output` over a generated uv.lock whose
  packages come from an empty find-links directory (so uv asks no index), UV_CACHE_DIR fresh for the
  cold run, kept for the warm runs;
- pip-audit (the bench extra): `pip-audit -r FILE --no-deps --disable-pip -s osv --osv-url URL/v1/query`
  (no POST cache: its warm run is another cold run, so it runs once).
Cold times are medians of --repeat whole-process runs; warm times are medians of --warm-repeat runs
taken in turn with the other tools' (scancache, uv, scancache, uv, ...), after the cold runs, and their
ratio is also given as the median of the pairs' ratios. Requests per endpoint are counted by the server
for each tool's first cold and first warm run. Ratios: scancache / uv and scancache / pip-audit
(below 1: faster).
Targets (issue 14): cold <= 1.25x uv at 50 ms and >= 10x faster than pip-audit; at zero latency no slower
than pip-audit; warm <= uv warm.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vuln import FULL_ZIP, SUBSET_ZIP, ServerProcess, build_requirements


def _tool(name: str) -> str | None:
    """An executable of this environment (next to sys.executable) or on PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def write_uv_project(directory: Path, lines: list[str]) -> None:
    """A uv project whose uv.lock pins lines (name==version), every package from an empty flat
    (find-links) index, so `uv audit --frozen` reads the lock and asks nothing but OSV."""
    links = directory / "find-links"
    links.mkdir(parents=True)
    pins = sorted({tuple(line.split("==", 1)) for line in lines})
    out = ['version = 1', 'revision = 3', 'requires-python = ">=3.11"', '']
    for name, version in pins:
        out += ['[[package]]', f'name = "{name}"', f'version = "{version}"',
                f'source = {{ registry = "{links}" }}', '']
    out += ['[[package]]', 'name = "bench-project"', 'version = "0.1.0"', 'source = { virtual = "." }',
            'dependencies = [']
    out += [f'    {{ name = "{name}" }},' for name, _ in pins]
    out += [']', '', '[package.metadata]', 'requires-dist = [']
    out += [f'    {{ name = "{name}", specifier = "=={version}" }},' for name, version in pins]
    out += [']', '']
    (directory / "uv.lock").write_text("\n".join(out), encoding="utf-8")
    (directory / "pyproject.toml").write_text(
        '[project]\nname = "bench-project"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f'dependencies = [{", ".join(json.dumps(f"{n}=={v}") for n, v in pins)}]\n'
        '[tool.uv]\npackage = false\n', encoding="utf-8")


def _findings(tool: str, stdout: str) -> str:
    """"vulnerable packages / findings" from a tool's JSON output (or why it could not be read)."""
    try:
        data = json.loads(stdout)
        if tool == "scancache":
            return f"{data['vulnerable_packages']}/{len(data['vulnerabilities'])}"
        if tool == "uv":
            vulns = data["vulnerabilities"]
            return f"{len({v['dependency']['name'] for v in vulns})}/{len(vulns)}"
        deps = data["dependencies"]
        return f"{sum(1 for d in deps if d.get('vulns'))}/{sum(len(d.get('vulns') or ()) for d in deps)}"
    except (ValueError, KeyError, TypeError):
        return "unreadable"


class Contender:
    """One tool: how to run it cold (fresh cache) and warm (the cache the cold run left)."""

    def __init__(self, name: str, command: list[str], cwd: Path, env: dict[str, str],
                 cache_dir: Path | None) -> None:
        self.name, self.command, self.cwd, self.env, self.cache_dir = name, command, cwd, env, cache_dir

    def run(self, server: Any, *, cold: bool, timeout: float) -> tuple[float, dict[str, int], str, int]:
        """(seconds, requests per endpoint, findings, exit status) of one whole-process run."""
        if cold and self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        server.reset_counts()
        start = time.perf_counter()
        done = subprocess.run(self.command, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        seconds = time.perf_counter() - start
        server.total_requests  # noqa: B018 (reads the counters)
        if done.returncode not in (0, 1):
            print(f"  {self.name} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        return seconds, dict(server.requests), _findings(self.name, done.stdout), done.returncode


def contenders(tmp: Path, lines: list[str], url: str, concurrency: int | None) -> list[Contender]:
    requirements = tmp / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Bytecode is written as on a user's machine (a session that sets PYTHONDONTWRITEBYTECODE would
    # otherwise time the compiler on every run).
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SCANCACHE_", "UV_")) and k != "PYTHONDONTWRITEBYTECODE"}
    # The `scancache` command pip installed beside this Python, as a user runs it (`python -m` would
    # add runpy's imports, ~3 ms, to every run); python -m scancache where there is none.
    script = shutil.which("scancache", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "scancache"]
    command += ["audit", "-r", str(requirements), "--format", "json", "--osv-url", url]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    found = [Contender("scancache", command, tmp, {**base, "SCANCACHE_CACHE_DIR": str(tmp / "sc")},
                       tmp / "sc")]
    uv = _tool("uv")
    if uv is not None:
        project = tmp / "uvproject"
        write_uv_project(project, lines)
        found.append(Contender("uv", [uv, "audit", "--frozen", "--service-url", url + "/", "--output-format",
                                      "json", "--preview-features", "audit-command,json-output"],
                               project, {**base, "UV_CACHE_DIR": str(tmp / "uvcache"), "UV_OFFLINE": "0"},
                               tmp / "uvcache"))
    else:
        print("uv: not installed (pip install uv), skipped")
    pip_audit = _tool("pip-audit")
    if pip_audit is not None:
        found.append(Contender("pip-audit", [pip_audit, "-r", str(requirements), "--no-deps", "--disable-pip",
                                             "-s", "osv", "--osv-url", f"{url}/v1/query",
                                             "--progress-spinner", "off", "--cache-dir", str(tmp / "pa"),
                                             "-f", "json"], tmp, base, tmp / "pa"))
    else:
        print("pip-audit: not installed (the bench extra), skipped")
    return found


def _requests(counts: dict[str, int]) -> str:
    return " + ".join(f"{n} {path.rsplit('/', 1)[-1]}" for path, n in sorted(counts.items())) or "0"


def bench(source: Path, records: dict[str, Any], pins: int, latency: float, repeat: int,
          warm_repeat: int, concurrency: int | None, timeout: float) -> dict[str, dict[str, float]]:
    """Each tool's cold runs (a fresh cache each), then warm runs of every tool in turn (A B A B ...,
    so a drift of the machine's speed hits both alike); the ratio is also taken pair by pair."""
    lines = build_requirements(records, pins)
    print(f"\n== {len(lines)} pins, {latency * 1000:.0f} ms simulated round trip")
    print(f"{'tool':<10} {'cold s':>8} {'warm s':>8}  {'findings':>9}  requests (cold; warm)")
    results: dict[str, dict[str, float]] = {}
    with ServerProcess(source, latency) as server, tempfile.TemporaryDirectory() as tmp:
        tools = contenders(Path(tmp), lines, server.url, concurrency)
        cold: dict[str, list[float]] = {c.name: [] for c in tools}
        warm: dict[str, list[float]] = {c.name: [] for c in tools if c.name != "pip-audit"}
        cold_requests: dict[str, dict[str, int]] = {}
        warm_requests: dict[str, dict[str, int]] = {}
        findings: dict[str, str] = {}
        for n in range(repeat):
            for contender in tools:
                if contender.name == "pip-audit" and n:
                    continue  # no POST cache: every run is a cold run, and one takes ~20 s
                seconds, counts, findings[contender.name], _ = contender.run(server, cold=True,
                                                                              timeout=timeout)
                cold[contender.name].append(seconds)
                cold_requests.setdefault(contender.name, counts)
        for _ in range(warm_repeat):  # every tool's cache is the one its last cold run left
            for contender in tools:
                if contender.name in warm:
                    seconds, counts, _, _ = contender.run(server, cold=False, timeout=timeout)
                    warm[contender.name].append(seconds)
                    warm_requests.setdefault(contender.name, counts)
        for contender in tools:
            name = contender.name
            results[name] = {"cold": statistics.median(cold[name]),
                             "warm": statistics.median(warm[name]) if name in warm else float("nan")}
            warm_text = f"{results[name]['warm']:8.3f}" if name in warm else f"{'-':>8}"
            print(f"{name:<10} {results[name]['cold']:8.3f} {warm_text}  {findings[name]:>9}  "
                  f"{_requests(cold_requests[name])}; "
                  f"{_requests(warm_requests[name]) if name in warm else 'no cache'}")
    ours = results.get("scancache")
    for other in ("uv", "pip-audit"):
        if ours and other in results:
            theirs = results[other]
            text = f"scancache/{other}: cold {ours['cold'] / theirs['cold']:.2f}x"
            if other in warm:
                paired = statistics.median(a / b for a, b in zip(warm["scancache"], warm[other], strict=True))
                text += (f", warm {ours['warm'] / theirs['warm']:.2f}x (median of {len(warm[other])} "
                         f"paired runs: {paired:.2f}x)")
            print(text)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pins", default="30,300,1000", help="comma-separated pin counts")
    parser.add_argument("--latency", default="0.05,0", help="comma-separated round trips, seconds")
    parser.add_argument("--repeat", type=int, default=3,
                        help="cold runs per tool (median); pip-audit runs once")
    parser.add_argument("--warm-repeat", type=int, default=15,
                        help="warm runs per tool, taken in turn with the other tools' (median)")
    parser.add_argument("--concurrency", type=int, help="pass --concurrency N to scancache audit")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one run may take")
    parser.add_argument("--data", type=Path, help="OSV all.zip to serve (default: ../shared/data/"
                        "osv-pypi-all.zip beside the checkout, else tests/data/osv-pypi-subset.zip)")
    args = parser.parse_args()

    import compileall

    import scancache
    from scancache.vulndb.dump import load_records

    compileall.compile_dir(str(Path(scancache.__file__).parent), quiet=1)  # as pip does at install
    source = args.data or (FULL_ZIP if FULL_ZIP.exists() else SUBSET_ZIP)
    records = load_records(source)
    print(f"data: {source.name} ({len(records)} records)")
    for latency in (float(x) for x in args.latency.split(",")):
        for pins in (int(x) for x in args.pins.split(",")):
            bench(source, records, pins, latency, args.repeat, args.warm_repeat, args.concurrency,
                  args.timeout)


if __name__ == "__main__":
    main()
