"""The bench's startup part: an app that imports heavy modules at startup, eager against lazy.

Each run is a fresh interpreter (so nothing imported here helps it): the eager app imports the
modules, the lazy app binds the same names to scancache.lazy stand-ins. The parent times the whole
process (what a user waits for) and the child reports its resident memory when ready. Runs
alternate eager/lazy so drift on a busy machine hits both alike; medians are reported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["HEAVY_MODULES", "available_modules", "bench_startup"]

#: What a scanner typically imports at startup (all dependencies of scancache, so present).
HEAVY_MODULES = ("httpx", "rich.console", "rich.table", "dns.resolver", "yaml", "zstandard",
                 "packaging.specifiers", "redis")

_REPORT = """
import json, os, sys
def _rss():
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
print(json.dumps({"rss": _rss(), "modules": len(sys.modules)}))
"""


def available_modules(names: tuple[str, ...] = HEAVY_MODULES) -> list[str]:
    """The names whose top-level package is installed (found without importing anything)."""
    return [name for name in names if importlib.util.find_spec(name.split(".")[0]) is not None]


def _program(modules: list[str], lazy: bool) -> str:
    lines = ["import time", "_t0 = time.perf_counter()"]
    if lazy:
        lines.append("from scancache.lazyload.proxy import lazy")
        lines += [f"m{i} = lazy({name!r})" for i, name in enumerate(modules)]
    else:
        lines += [f"import {name} as m{i}" for i, name in enumerate(modules)]
    return "\n".join(lines) + "\n" + _REPORT


def _run_once(code: str, env: dict[str, str], timeout: float) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"startup probe failed: {tail}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def bench_startup(runs: int, step: Callable[[], None], *, modules: list[str] | None = None,
                  timeout: float = 60.0) -> dict[str, Any]:
    """{"modules", "eager": {...}, "lazy": {...}, "baseline": {...}} with median wall ms and RSS MB."""
    modules = available_modules() if modules is None else modules
    env = {k: v for k, v in os.environ.items() if k != "SCANCACHE_EAGER"}  # laziness must be on
    programs = {"baseline": "pass\n" + _REPORT, "eager": _program(modules, lazy=False),
                "lazy": _program(modules, lazy=True)}
    _run_once(programs["eager"], env, timeout)  # warm the OS file cache and .pyc files first
    samples: dict[str, list[tuple[float, dict[str, Any]]]] = {name: [] for name in programs}
    for _ in range(runs):
        for name, code in programs.items():
            samples[name].append(_run_once(code, env, timeout))
        step()
    out: dict[str, Any] = {"modules": modules, "runs": runs}
    for name, rows in samples.items():
        out[name] = {
            "wall_ms": round(statistics.median(s for s, _ in rows) * 1000, 1),
            "rss_mb": round(statistics.median(r["rss"] for _, r in rows) / (1024 * 1024), 1),
            "modules_loaded": int(statistics.median(r["modules"] for _, r in rows)),
        }
    return out
