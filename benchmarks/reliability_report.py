"""A bounded fault campaign against scancache, printed as a Markdown table for the README.

Four campaigns, each on loopback servers this script starts (nothing leaves 127.0.0.1):
- SQLite: writer processes (4 threads each) killed with SIGKILL mid-write beside a survivor process
  that reads and writes the same file; afterwards PRAGMA integrity_check, and every write that
  returned True is read back.
- Redis: stop/start cycles and SIGSTOP hangs while 4 threads set and get; before each outage every
  write acknowledged since the server's last start is read back (a restarted Redis is empty by
  design, so that is the data a caller may count on), and the slowest single call is recorded.
- DNS: bursts of SERVFAIL, timeouts and truncated UDP answers over many stale names (a fake clock
  ages the answers); each burst is followed by healing and a check that fresh answers return.
- OSV/NVD: bursts of 429 (Retry-After), 503, dropped connections, truncated and malformed JSON; short
  bursts are retried away, long ones hit entries past their TTL, which must then be served stale.

"Errors surfaced" counts exceptions that reached a caller that had something to be served (a stale
answer, a retry budget, a cache that must answer misses): the target is 0 in every row. Sleeps for
backoff and expiry go through injected clocks; only process and server state changes are waited on.
Run: python benchmarks/reliability_report.py [--kills 30] [--redis-cycles 10] [--dns-bursts 30]
     [--osv-bursts 50] [--seed 7] [--json]   (about 20 s on 2 cores; well under two minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
from scancache.testing.crash_worker import kill_mid_write, spawn

#: One row of the table: kind, faults injected, operations, errors surfaced, writes lost, note.
Row = dict[str, Any]



def sqlite_campaign(kills: int, rng: random.Random) -> list[Row]:
    """kill -9 `kills` writer processes mid-write beside a survivor; count what was lost."""
    with tempfile.TemporaryDirectory(prefix="scancache-crash-") as tmp:
        cache_dir = Path(tmp)
        survivor = spawn(cache_dir, "survivor")
        acknowledged: list[str] = []
        victim_ops = 0
        try:
            for kill in range(kills):
                acknowledged += kill_mid_write(cache_dir, f"victim{kill}", rng)
            victim_ops = 2 * len(acknowledged)  # a set and a get per acknowledged key, at least
        finally:
            (cache_dir / "stop").touch()
            out, _ = survivor.communicate(timeout=60)
        lines = out.splitlines()
        summary = json.loads(lines[-1].removeprefix("DONE ")) if lines and lines[-1].startswith("DONE ") \
            else {"ops": 0, "errors": [f"survivor exited with {survivor.returncode}"]}
        survivor_keys = [line for line in lines if line.startswith("survivor")]
        files = list(cache_dir.glob("*.sqlite3"))
        with sqlite3.connect(files[0]) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        cache = Cache(CacheConfig(cache_type=CacheType.DISK, cache_dir=str(cache_dir), ttl_seconds=3600))
        try:
            every = acknowledged + survivor_keys
            found = cache.get_many(every)
            lost = sum(1 for key in every if key not in found)
        finally:
            cache.close()
    return [{"kind": "SQLite writer killed with kill -9 mid-write", "faults": kills,
             "operations": victim_ops + summary["ops"], "errors": len(summary["errors"]), "lost": lost,
             "note": f"integrity_check {integrity}; {len(every):,} acknowledged writes checked"}]


class _Load:
    """Four threads that set then get their own keys against one cache, recording every outcome."""

    def __init__(self, cache: Cache) -> None:
        self.cache, self.stop, self.lock = cache, threading.Event(), threading.Lock()
        self.acked: list[tuple[str, int, float]] = []  # key, value, when the set call started
        self.ops = self.errors = 0
        self.slowest = 0.0
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(4)]
        for thread in self.threads:
            thread.start()

    def _run(self, thread: int) -> None:
        i = 0
        while not self.stop.is_set():
            key, started = f"t{thread}-{i}", time.monotonic()
            try:
                ok = self.cache.set(key, i)
                middle = time.monotonic()
                self.cache.get(key)
                done = time.monotonic()
            except Exception:
                with self.lock:
                    self.errors += 1
                continue
            with self.lock:
                self.ops += 2
                self.slowest = max(self.slowest, middle - started, done - middle)
                if ok:
                    self.acked.append((key, i, started))
            i += 1

    def wait_ops(self, more: int, timeout: float = 10.0) -> None:
        """Block until `more` further operations ran (state change in other threads, bounded)."""
        target, deadline = self.ops + more, time.monotonic() + timeout
        while self.ops < target and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Stop and join the threads."""
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def redis_campaign(cycles: int, pauses: int) -> list[Row]:
    """Stop/start and SIGSTOP a redis-server under load; check acknowledged writes per server life."""
    from scancache.testing.redis_server import RedisServer, find_redis_server

    if find_redis_server() is None:
        return [{"kind": "Redis (skipped: no redis-server binary)", "faults": 0, "operations": 0,
                 "errors": 0, "lost": 0, "note": ""}]
    timeout = 0.3
    with RedisServer() as server:
        cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url,
                                  redis_timeout_seconds=timeout))
        load = _Load(cache)
        life_started = 0.0
        lost = checked = 0
        recoveries: list[float] = []
        rows: list[Row] = []
        try:
            for kind, count in (("stop", cycles), ("pause", pauses)):
                ops_before, errors_before = load.ops, load.errors
                lost_before, slowest_before = lost, load.slowest
                load.slowest = 0.0
                for _ in range(count):
                    load.wait_ops(300)
                    with load.lock:  # everything acknowledged since this server started must be there
                        alive = [(k, v) for k, v, started in load.acked if started > life_started]
                    found = cache.get_many([k for k, _ in alive])
                    lost += sum(1 for k, v in alive if found.get(k) != v)
                    checked += len(alive)
                    if kind == "stop":
                        server.stop()
                        load.wait_ops(200)
                        server.start()
                        life_started = back = time.monotonic()
                    else:
                        server.pause()
                        load.wait_ops(100)
                        server.resume()
                        back = time.monotonic()
                    deadline = back + 5.0
                    while time.monotonic() < deadline and not any(s > back for _, _, s in load.acked[-20:]):
                        time.sleep(0.002)
                    recoveries.append(min((s for _, _, s in load.acked if s > back), default=deadline) - back)
                label = ("Redis stopped and restarted during reads/writes" if kind == "stop"
                         else "Redis hung (SIGSTOP) during reads/writes")
                rows.append({"kind": label, "faults": count, "operations": load.ops - ops_before,
                             "errors": load.errors - errors_before, "lost": lost - lost_before,
                             "note": f"slowest call {load.slowest:.2f} s (timeout {timeout} s); "
                                     f"back in use <= {max(recoveries[-count:]):.2f} s after recovery"})
                load.slowest = max(load.slowest, slowest_before)
        finally:
            load.close()
            cache.close()
    rows[-1]["note"] += f"; {checked:,} acknowledged writes checked in all"
    return rows


class _Clock:
    """Epoch seconds moved by hand: expiry and backoff windows without waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def dns_campaign(bursts: int, names_per_burst: int = 50) -> list[Row]:
    """Bursts of SERVFAIL / timeout / truncation over stale names; callers must always get answers."""
    from scancache.dns.cache import REFRESH_BACKOFF_SECONDS, DNSCache
    from scancache.dns.config import DNSConfig
    from scancache.testing.dns_server import LoopbackDNSServer

    clock = _Clock()
    kinds = ("servfail", "drop", "truncate")
    totals = {k: {"faults": 0, "operations": 0, "errors": 0, "queries": 0, "wrong": 0} for k in kinds}
    names = [f"h{i}.fleet.test" for i in range(names_per_burst)]
    with LoopbackDNSServer() as server:
        for i, name in enumerate(names):
            server.set_records(name, "A", [f"198.51.100.{i}"], ttl=60)
        dns = DNSCache(DNSConfig(timeout_seconds=0.1, attempts=2, stale_ttl_seconds=3600),
                       nameservers=[server.address], clock=clock)
        try:
            await asyncio.gather(*[dns.resolve(n, "A") for n in names])
            for burst in range(bursts):
                kind, row = kinds[burst % len(kinds)], totals[kinds[burst % len(kinds)]]
                version = burst + 1  # each burst's fresh answer differs, to tell fresh from stale
                expected_now = {n: dns.cache.get_entry(dns.cache_key(n, "A")).value[0] for n in names}
                getattr(server, kind)()
                for i, name in enumerate(names):  # what healing must bring (truncation: TCP has it)
                    server.set_records(name, "A", [f"198.51.{100 + version % 100}.{i}"], ttl=60)
                server.reset_counts()
                clock.now += 61 + REFRESH_BACKOFF_SECONDS  # every answer stale, backoffs over
                row["faults"] += 1
                for _ in range(4):  # four rounds of every name, concurrently
                    results = await asyncio.gather(*[dns.resolve(n, "A") for n in names],
                                                   return_exceptions=True)
                    row["operations"] += len(results)
                    for name, result in zip(names, results, strict=True):
                        if isinstance(result, BaseException):
                            row["errors"] += 1
                        elif kind != "truncate" and result != expected_now[name]:
                            row["wrong"] += 1
                await dns.wait_background()
                row["queries"] += server.total_queries
                server.heal()
                clock.now += REFRESH_BACKOFF_SECONDS + 1
                await asyncio.gather(*[dns.resolve(n, "A") for n in names])  # stale; refresh behind
                await dns.wait_background()
                healed = await asyncio.gather(*[dns.resolve(n, "A") for n in names])
                row["operations"] += 2 * len(names)
                row["wrong"] += sum(1 for i, r in enumerate(healed)
                                    if r != [f"198.51.{100 + version % 100}.{i}"])
        finally:
            await dns.aclose()
    labels = {"servfail": "DNS upstream SERVFAIL burst", "drop": "DNS upstream timeout burst",
              "truncate": "DNS truncated (TC) answers burst"}
    return [{"kind": labels[k], "faults": v["faults"], "operations": v["operations"], "errors": v["errors"],
             "lost": "n/a",
             "note": f"{v['queries'] / max(1, v['faults'] * names_per_burst):.2f} queries per stale name per "
                     f"burst (4 callers each); wrong answers {v['wrong']}"} for k, v in totals.items()]


async def osv_campaign(bursts: int, rng: random.Random) -> list[Row]:
    """429/503/drop/truncated/malformed bursts on OSV and NVD; short ones retried, long ones served stale."""
    from scancache.testing.osv_server import OSVTestServer, load_records
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig

    data = Path(__file__).resolve().parent.parent / "tests" / "data" / "osv-pypi-subset.zip"
    records = load_records(data)
    queries = [{"product": "jinja2", "version": "2.4", "ecosystem": "PyPI"},
               {"product": "requests", "version": "2.0.0", "ecosystem": "PyPI"},
               {"product": "django", "version": "1.11", "ecosystem": "PyPI"},
               {"cve_id": "CVE-2014-1402", "product": "jinja2"}]  # OSV 404s it: NVD answers
    kinds = ("429", "503", "drop", "truncated", "malformed")
    totals = {k: {"faults": 0, "operations": 0, "errors": 0, "stale": 0, "requests": 0, "bad": 0}
              for k in kinds}
    clock = _Clock()

    async def no_wait(seconds: float) -> None:  # backoff and Retry-After, without waiting
        clock.now += seconds

    with OSVTestServer(records, page_size=3, max_lifetime_seconds=300) as server:
        config = VulnDBConfig(osv_url=server.url, nvd_url=server.nvd_url, ttl_seconds=600,
                              stale_ttl_seconds=86400, max_retries=3, backoff_base_seconds=0.5,
                              backoff_max_seconds=5, timeout_seconds=5)
        reference_cache = VulnerabilityDBCache(config, clock=clock, sleep=no_wait)
        reference = [sorted(r["id"] for r in await reference_cache.query_vulnerability_db(q))
                     for q in queries]
        await reference_cache.aclose()
        vulndb = VulnerabilityDBCache(config, clock=clock, sleep=no_wait)
        try:
            for q in queries:
                await vulndb.query_vulnerability_db(q)
            for burst in range(bursts):
                kind = kinds[burst % len(kinds)]
                row = totals[kind]
                outlasts = burst % 2 == 1  # every other burst is longer than the retry budget
                clock.now += 700  # past every TTL: each query must go upstream
                server.reset_counts()
                length = 1000 if outlasts else rng.randint(1, config.max_retries)
                params = {"retry_after": "2"} if kind == "429" else {}
                for q, want in zip(queries, reference, strict=True):
                    server.clear_faults()
                    server.inject(kind, count=length, **params)
                    row["faults"] += min(length, config.max_retries + 1)
                    row["operations"] += 1
                    try:
                        result = await vulndb.query_vulnerability_db(q)
                    except Exception:
                        row["errors"] += 1
                        continue
                    row["stale"] += int(result.stale)
                    row["bad"] += int(sorted(r["id"] for r in result) != want)
                row["requests"] += server.total_requests
                server.clear_faults()
                for q, want in zip(queries, reference, strict=True):  # nothing bad was cached
                    clock.now += 1
                    result = await vulndb.query_vulnerability_db(q)
                    row["operations"] += 1
                    row["bad"] += int(sorted(r["id"] for r in result) != want)
        finally:
            await vulndb.aclose()
    labels = {"429": "OSV/NVD 429 with Retry-After burst", "503": "OSV/NVD 503 burst",
              "drop": "OSV/NVD dropped connections burst", "truncated": "OSV/NVD truncated JSON burst",
              "malformed": "OSV/NVD malformed JSON burst"}
    return [{"kind": labels[k], "faults": v["faults"], "operations": v["operations"], "errors": v["errors"],
             "lost": "n/a",
             "note": f"{v['stale']} answers served stale; wrong or bad answers cached {v['bad']}"}
            for k, v in totals.items()]


def markdown(rows: list[Row], seconds: float) -> str:
    """The table the README quotes."""
    lines = ["| Fault | Faults injected | Operations | Errors surfaced to callers | "
             "Acknowledged writes lost | Notes |", "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        lost = row["lost"] if isinstance(row["lost"], str) else f"{row['lost']:,}"
        lines.append(f"| {row['kind']} | {row['faults']:,} | {row['operations']:,} | {row['errors']:,} | "
                     f"{lost} | {row['note']} |")
    faults = sum(r["faults"] for r in rows)
    ops = sum(r["operations"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    lost_total = sum(r["lost"] for r in rows if isinstance(r["lost"], int))
    lines.append(f"| **Total** | **{faults:,}** | **{ops:,}** | **{errors:,}** | **{lost_total:,}** | "
                 f"{seconds:.0f} s, {os.cpu_count()} CPUs |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every campaign, print the table; exit status 1 if anything was lost or surfaced."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="SQLite writers killed with kill -9")
    parser.add_argument("--redis-cycles", type=int, default=10, help="Redis stop/start cycles")
    parser.add_argument("--redis-pauses", type=int, default=5, help="Redis SIGSTOP hangs")
    parser.add_argument("--dns-bursts", type=int, default=30, help="DNS fault bursts (3 kinds in turn)")
    parser.add_argument("--osv-bursts", type=int, default=50, help="OSV/NVD fault bursts (5 kinds in turn)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    logging.getLogger("scancache").setLevel(logging.CRITICAL)  # injected faults log by design
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rng = random.Random(args.seed)
    started = time.monotonic()
    rows = sqlite_campaign(args.kills, rng)
    rows += redis_campaign(args.redis_cycles, args.redis_pauses)
    rows += asyncio.run(dns_campaign(args.dns_bursts))
    rows += asyncio.run(osv_campaign(args.osv_bursts, rng))
    print(markdown(rows, time.monotonic() - started))
    if args.json:
        print(json.dumps(rows, indent=2))
    bad = any(r["errors"] for r in rows) or any(isinstance(r["lost"], int) and r["lost"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
