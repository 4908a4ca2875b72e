"""Startup cost of a sample scanner app, eager imports versus scancache.lazy, as whole processes.

The app imports six heavy modules and, on its common path, uses two of them (parse a YAML config,
build a DNS resolver). Each variant runs as a fresh `python app.py` N times, interleaved; the
median wall time and the RSS the app reports at exit are compared. Also reports what
`python -X importtime -c "import scancache"` says scancache itself costs.

Run: python benchmarks/bench_lazy.py [--runs 11] [--json]
Targets: lazy startup at least 60% faster than eager; `import scancache` under 15 ms; `scancache --help`
under 150 ms as a whole process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ["httpx", "redis", "requests", "rich.console", "dns.resolver", "yaml"]
USED = ["yaml", "dns.resolver"]

_COMMON_PATH = '''
def main():
    config = yaml.safe_load("targets: [scanme.example, 192.0.2.7]\\nports: [22, 443]")
    resolver = dns_resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    print(len(config["targets"]), len(resolver.nameservers), rss_mb())


def rss_mb():
    import os
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    main()
'''


# Child processes may write .pyc files: a deployed app has them, and without them every run would
# recompile stale modules and measure the compiler instead of the imports.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _alias(module: str) -> str:
    return module.replace(".", "_")


def write_apps(directory: Path) -> dict[str, Path]:
    """Write the eager and the lazy variant of the sample app; return their paths."""
    eager = "\n".join(f"import {m} as {_alias(m)}" for m in HEAVY)
    lazy = "from scancache import lazy\n" + "\n".join(f"{_alias(m)} = lazy({m!r})" for m in HEAVY)
    apps = {}
    for variant, header in (("eager", eager), ("lazy", lazy)):
        path = directory / f"scanner_{variant}.py"
        path.write_text(f'"""Sample scanner ({variant} imports)."""\n{header}\n{_COMMON_PATH}')
        apps[variant] = path
    return apps


def run_once(path: Path) -> tuple[float, float]:
    """Run the app once; return (wall seconds, RSS MB the app reported at exit)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True,
                          env=_ENV)
    elapsed = time.perf_counter() - started
    return elapsed, float(done.stdout.split()[-1])


def scancache_import_us(runs: int) -> float:
    """Median cumulative microseconds that -X importtime reports for `import scancache`."""
    samples = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import scancache"],
                              capture_output=True, text=True, check=True, env=_ENV)
        line = [ln for ln in done.stderr.splitlines() if ln.rstrip().endswith("| scancache")][-1]
        samples.append(int(line.split("|")[1]))
    return statistics.median(samples)


def cli_help_ms(runs: int) -> float:
    """Median wall milliseconds of a whole `scancache --help` process (the CLI's start-up)."""
    script = Path(sys.executable).parent / "scancache"
    command = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "scancache", "--help"]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, env=_ENV)
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per variant (median is reported)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--profile", action="store_true",
                        help="also import each heavy module alone (profile_imports) and show its cost")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="scancache-bench-lazy-") as tmp:
        apps = write_apps(Path(tmp))
        for path in apps.values():  # warm the file system cache and .pyc files
            run_once(path)
        samples: dict[str, list[tuple[float, float]]] = {"eager": [], "lazy": []}
        for _ in range(args.runs):
            for variant, path in apps.items():  # interleaved, so drift hits both alike
                samples[variant].append(run_once(path))
    result: dict[str, object] = {"python": sys.version.split()[0], "runs": args.runs,
                                 "heavy_modules": HEAVY, "used_modules": USED}
    for variant, runs in samples.items():
        result[f"{variant}_startup_ms"] = round(statistics.median(t for t, _ in runs) * 1000, 1)
        result[f"{variant}_startup_min_ms"] = round(min(t for t, _ in runs) * 1000, 1)
        result[f"{variant}_rss_mb"] = round(statistics.median(r for _, r in runs), 1)
    eager_ms, lazy_ms = result["eager_startup_ms"], result["lazy_startup_ms"]
    eager_rss, lazy_rss = result["eager_rss_mb"], result["lazy_rss_mb"]
    result["startup_reduction_pct"] = round(100 * (1 - lazy_ms / eager_ms), 1)
    result["rss_reduction_pct"] = round(100 * (1 - lazy_rss / eager_rss), 1)
    result["import_scancache_us"] = scancache_import_us(args.runs)
    result["cli_help_ms"] = cli_help_ms(args.runs)
    if args.profile:
        from scancache.lazyload.profile import profile_imports

        result["module_import_ms"] = {p.module: round(p.total_us / 1000, 1)
                                      for p in profile_imports(HEAVY) if p.ok}

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"sample scanner: imports {', '.join(HEAVY)}; uses {', '.join(USED)}; "
          f"median of {args.runs} runs, Python {result['python']}")
    print(f"{'':8}{'startup ms':>12}{'(min)':>10}{'RSS MB':>10}")
    for variant in ("eager", "lazy"):
        print(f"{variant:8}{result[f'{variant}_startup_ms']:>12}{result[f'{variant}_startup_min_ms']:>10}"
              f"{result[f'{variant}_rss_mb']:>10}")
    print(f"startup {result['startup_reduction_pct']}% less (target >= 60%), "
          f"RSS {result['rss_reduction_pct']}% less")
    print(f"import scancache: {result['import_scancache_us'] / 1000:.1f} ms cumulative "
          "(python -X importtime; target < 15 ms)")
    print(f"scancache --help: {result['cli_help_ms']} ms, whole process, median (target < 150 ms)")
    if args.profile:
        costs = ", ".join(f"{m} {ms} ms" for m, ms in result["module_import_ms"].items())
        print(f"each module imported alone (-X importtime, one run): {costs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
