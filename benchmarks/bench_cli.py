"""Whole `scancache` processes on N names: the memory cache against the disk cache, in one run (issue 19).

A loopback dnsmasq (scancache.testing.dnsmasq, its own process) answers A and AAAA for every name
under *.bench.test with a 300 s TTL. For `resolve -i FILE` and `cache warm --hosts FILE` each
process is timed from start to exit, its output written to a file (`> out.jsonl`):
  cold memory      a fresh memory cache (every name asked upstream)
  cold disk        a fresh disk cache directory (every name asked upstream and stored)
  warm disk        the same command again on that directory (0 queries expected)
Printed: seconds per run and the ratios against the issue's targets
  cold disk / cold memory   (target <= 1.2)
  warm disk seconds          (target < 1.5 s for 100,000 names)
and the CPU seconds (user + system) each process used: on a shared machine wall time also counts
the time other processes held the cores.
(that a warm run sends 0 queries is tests/test_dns_bulk_writes.py's job). Each figure is the
median of --rounds rounds (memory and disk interleaved), since the machine may be shared. A round in
which a process fails (lookups timed out on an overloaded machine) is run again, at most RETRIES
times, with fresh cache directories; the retry is printed on stderr.
Run: python benchmarks/bench_cli.py [--names 100000] [--rounds 1] [--concurrency 256] [--json]
                                   [--baseline SRC]   (SRC: an older version's src/, run interleaved)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import scancache
from scancache.testing.dnsmasq import Dnsmasq, dnsmasq_path

ZONE = "bench.test"
OPTIONS = [f"--address=/{ZONE}/198.51.100.1", f"--address=/{ZONE}/2001:db8::1", "--local-ttl=300"]


def _run(argv: list[str], env: dict[str, str], output: str) -> tuple[float, float]:
    """(seconds one `scancache` process took from start to exit, CPU seconds it used); its stdout
    goes to the file output, as `scancache resolve -i FILE > out.jsonl` (a pipe read by this
    process would add this process's reading to the time, on a machine with 2 cores)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(output, "wb") as out:
        done = subprocess.run([sys.executable, "-m", "scancache", *argv], env=env, stdout=out,
                              stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        with open(output, encoding="utf-8") as rows:
            failed = [line.strip() for line in rows if '"error"' in line]
        raise RunFailed(f"scancache {' '.join(argv[:3])} ... exited {done.returncode}: "
                         f"{done.stderr.strip()[-500:]} {len(failed)} failed rows, e.g. {failed[:3]}")
    return seconds, cpu


def _command(kind: str, hosts: str, server: str, concurrency: int) -> list[str]:
    if kind == "resolve":
        return ["resolve", "-i", hosts, "--nameserver", server, "--concurrency", str(concurrency)]
    return ["cache", "warm", "--hosts", hosts, "--nameserver", server]


def _compile_bytecode(package: str) -> None:
    """Write the .pyc files of the package directory, as `pip install` does: a process that finds
    none compiles every module it imports (about 0.1 s of a run's start-up on this machine), and
    this machine sets PYTHONDONTWRITEBYTECODE, so without this every timed process would."""
    import compileall

    if not compileall.compile_dir(package, quiet=1):
        raise SystemExit(f"cannot compile {package}")


class RunFailed(Exception):
    """A process exited non-zero (e.g. lookups timed out while the machine was overloaded)."""


#: A round with a failed process is run again (with fresh cache directories) this many times.
RETRIES = 2


def _round(command: list[str], directory: str, env: dict[str, str], scratch: str
           ) -> dict[str, tuple[float, float]]:
    """{cold_memory, cold_disk, warm_disk: (seconds, CPU seconds)} of one round of command."""
    disk = ["--cache-type", "disk", "--cache-dir", directory, *command]
    return {name: _run(argv, env, os.path.join(scratch, "out.jsonl"))
            for name, argv in (("cold_memory", ["--cache-type", "memory", *command]),
                               ("cold_disk", disk), ("warm_disk", disk))}


def measure(names: int, rounds: int, concurrency: int, baseline: str | None = None
            ) -> dict[str, Any]:
    """{command: {cold_memory, cold_disk, warm_disk (seconds), the same with _cpu (CPU seconds of the
    process, user + system), cold_disk_over_memory}}; with baseline (a directory holding another
    version's `scancache` package, e.g. `git archive COMMIT src | tar -x`), also {"baseline " +
    command: ...} for that version, its runs interleaved with this one's in every round."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch, Dnsmasq(OPTIONS) as server:
        hosts = os.path.join(scratch, "hosts.txt")
        with open(hosts, "w", encoding="utf-8") as out:
            out.writelines(f"host{i}.{ZONE}\n" for i in range(names))
        env = {**os.environ, "HOME": scratch, "XDG_CACHE_HOME": os.path.join(scratch, "xdg")}
        for name in ("SCANCACHE_CONFIG", "SCANCACHE_CACHE_DIR", "SCANCACHE_CACHE_TYPE", "PYTHONPATH"):
            env.pop(name, None)
        versions = {"": env}
        _compile_bytecode(os.path.dirname(os.path.abspath(scancache.__file__)))
        if baseline is not None:
            versions = {"baseline ": {**env, "PYTHONPATH": os.path.abspath(baseline)}, "": env}
            _compile_bytecode(os.path.join(os.path.abspath(baseline), "scancache"))
        for kind in ("resolve", "warm"):
            command = _command(kind, hosts, server.address, concurrency)
            times: dict[str, dict[str, list[float]]] = {
                version: {"cold_memory": [], "cold_disk": [], "warm_disk": []} for version in versions}
            cpu: dict[str, dict[str, list[float]]] = {
                version: {name: [] for name in runs} for version, runs in times.items()}
            for round_no in range(rounds):
                for version, version_env in versions.items():
                    for attempt in range(RETRIES + 1):
                        directory = os.path.join(scratch, f"{kind}-{round_no}-{len(version)}-{attempt}")
                        try:
                            figures = _round(command, directory, version_env, scratch)
                            break
                        except RunFailed as exc:
                            if attempt == RETRIES:
                                raise SystemExit(str(exc)) from None
                            print(f"retrying a round: {exc}"[:300], file=sys.stderr)
                    for name, (seconds, used) in figures.items():
                        times[version][name].append(seconds)
                        cpu[version][name].append(used)
            for version in versions:
                figures: dict[str, Any] = {k: statistics.median(v) for k, v in times[version].items()}
                figures.update({f"{k}_cpu": statistics.median(v) for k, v in cpu[version].items()})
                figures["cold_disk_over_memory"] = figures["cold_disk"] / figures["cold_memory"]
                label = "resolve -i" if kind == "resolve" else "cache warm --hosts"
                results[version + label] = figures
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=100_000, help="host names (default 100,000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians printed (default 1)")
    parser.add_argument("--concurrency", type=int, default=256,
                        help="resolve's --concurrency (default 256)")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also time the scancache package in SRC (another version's src/), "
                             "interleaved with this one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if dnsmasq_path() is None:
        print("dnsmasq is not installed (apt-get install dnsmasq-base)", file=sys.stderr)
        return 2
    results = measure(args.names, args.rounds, args.concurrency, args.baseline)
    if args.json:
        print(json.dumps({"names": args.names, "rounds": args.rounds, **results}, indent=2))
        return 0
    print(f"{args.names:,} names, {args.rounds} round(s), whole processes, loopback dnsmasq")
    for command, f in results.items():
        print(f"{command:29} cold memory {f['cold_memory']:6.2f} s   cold disk {f['cold_disk']:6.2f} s"
              f" ({f['cold_disk_over_memory']:.2f}x, target <= 1.2x)   warm disk "
              f"{f['warm_disk']:6.2f} s ({f['warm_disk'] / args.names * 1e6:.0f} us/name)")
        print(f"{'':29} CPU: cold memory {f['cold_memory_cpu']:6.2f} s   cold disk "
              f"{f['cold_disk_cpu']:6.2f} s ({f['cold_disk_cpu'] / f['cold_memory_cpu']:.2f}x)"
              f"            warm disk {f['warm_disk_cpu']:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
