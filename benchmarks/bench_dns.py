"""DNSCache against dnspython and aiodns, in one run, on the same loopback DNS server.

The server runs in its own process (so it does not share the GIL with the clients) and answers any
name under *.bench.test. Each contender gets its own fresh names (c-ares and dnspython's LRUCache
cache answers, so reusing names would measure their caches). All use rdtype A and the same pool of
`--concurrency` worker tasks. Printed: queries/s, CPU microseconds per query, and the ratios
  DNSCache cold / aiodns            (target >= 2)
  DNSCache warm / dnspython+LRU     (target >= 2)
plus how many upstream queries 1,000 concurrent resolves of one name made (target: 1).
Each figure is the median of --rounds rounds (contenders interleaved), since the machine may be shared.
Run: python benchmarks/bench_dns.py [--names 20000] [--concurrency 200] [--rounds 3] [--quick] [--json]
Recon parts (benchmarks/dns_recon.py), instead of the A comparison:
  --types [--names N]   every record type cold/warm, against aiodns where it asks that type
  --stream [N]          `scancache resolve -i` on N names (default 1,000,000): rate and peak RSS
  --pool [--names N]    20 resolvers, 5 misbehaving, one trusted: their share, wrong answers
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scancache.dns.cache import DNSCache
from scancache.dns.config import DNSConfig
from scancache.testing.dns_server import LoopbackDNSServer

ZONE = "bench.test"
ADDRESS = "198.51.100.1"


def start_server_process(records: list[str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """A LoopbackDNSServer in a child process serving records ("NAME[/TYPE]=VALUE"; default: every
    name under ZONE answers ADDRESS); returns it and its "ip:port"."""
    records = [f"*.{ZONE}={ADDRESS}"] if records is None else records
    proc = subprocess.Popen(
        [sys.executable, "-m", "scancache.testing.dns_server", *[f"--record={r}" for r in records]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    if not address:
        proc.kill()
        raise SystemExit("the loopback DNS server did not start")
    return proc, address


def fresh_names(label: str, count: int) -> list[str]:
    return [f"{label}-{i}.{ZONE}" for i in range(count)]


async def drive(resolve: Callable[[str], Awaitable[Any]], names: list[str], concurrency: int
                ) -> dict[str, float]:
    """Resolve every name with `concurrency` workers; wall and CPU time, failures counted."""
    source = iter(names)
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for name in source:
            try:
                await resolve(name)
            except Exception:
                failures += 1

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"qps": len(names) / wall, "cpu_us": cpu / len(names) * 1e6, "failures": failures}


async def bench_dnspython(host: str, port: int, names: list[str], concurrency: int, *, lru: bool
                          ) -> tuple[dict[str, float], dict[str, float] | None]:
    import dns.asyncresolver
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.lifetime = 5.0
    if lru:
        resolver.cache = dns.resolver.LRUCache(max_size=len(names) + 10)

    async def resolve(name: str) -> Any:
        return await resolver.resolve(name, "A")

    cold = await drive(resolve, names, concurrency)
    warm = await drive(resolve, names, concurrency) if lru else None
    return cold, warm


async def bench_aiodns(host: str, port: int, names: list[str], concurrency: int) -> dict[str, float]:
    import aiodns

    resolver = aiodns.DNSResolver(nameservers=[host], udp_port=port, tcp_port=port, timeout=2.0,
                                  tries=3)
    query = getattr(resolver, "query_dns", None) or resolver.query

    async def resolve(name: str) -> Any:
        return await query(name, "A")

    try:
        return await drive(resolve, names, concurrency)
    finally:
        close = getattr(resolver, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def bench_dnscache(address: str, names: list[str], concurrency: int
                         ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    config = DNSConfig(max_size=len(names) * 2 + 10, max_memory_mb=512)
    async with DNSCache(config, nameservers=[address]) as cache:
        async def resolve(name: str) -> Any:
            return await cache.resolve(name, "A")

        cold = await drive(resolve, names, concurrency)
        warm = await drive(resolve, names, concurrency)
        # Warm, one caller: the pure hit path without worker scheduling.
        start, cpu = time.perf_counter(), time.process_time()
        for name in names:
            await cache.resolve(name, "A")
        hit = {"qps": len(names) / (time.perf_counter() - start),
               "cpu_us": (time.process_time() - cpu) / len(names) * 1e6, "failures": 0}
        cold["retries"] = cache.get_stats()["retries"]
    return cold, warm, hit


async def bench_dnscache_bulk(address: str, names: list[str], concurrency: int) -> dict[str, float]:
    config = DNSConfig(max_size=len(names) + 10)
    async with DNSCache(config, nameservers=[address]) as cache:
        failures = 0
        wall, cpu = time.perf_counter(), time.process_time()
        async for _, result in cache.resolve_many(names, concurrency=concurrency, rdtype="A"):
            failures += not isinstance(result, list)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"qps": len(names) / wall, "cpu_us": cpu / len(names) * 1e6, "failures": failures}


async def bench_coalescing(callers: int) -> int:
    """Upstream queries made by `callers` concurrent resolves of one uncached name."""
    with LoopbackDNSServer({f"one.{ZONE}": ADDRESS}) as server:
        server.delay(0.05)  # the first query stays in flight while the others arrive
        async with DNSCache(DNSConfig(), nameservers=[server.address]) as cache:
            await asyncio.gather(*[cache.resolve(f"one.{ZONE}", "A") for _ in range(callers)])
        return server.query_count(f"one.{ZONE}")


def median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The median of each field over rounds (the machine is shared: medians resist noise)."""
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


async def settle() -> None:
    """Let the previous contender's garbage and threads (c-ares) go before measuring the next."""
    gc.collect()
    await asyncio.sleep(0.3)


async def one_round(address: str, n: int, c: int, tag: str) -> dict[str, dict[str, float]]:
    host, port = address.rsplit(":", 1)
    slow_n = min(n, 5_000)  # dnspython resolves ~2k q/s: fewer names keep the run short
    out: dict[str, dict[str, float]] = {}
    await settle()
    out["dnspython"], _ = await bench_dnspython(host, int(port), fresh_names(f"dp{tag}", slow_n), c,
                                                lru=False)
    await settle()
    out["dnspython_lru_cold"], warm = await bench_dnspython(host, int(port), fresh_names(f"dl{tag}", slow_n),
                                                            c, lru=True)
    assert warm is not None
    out["dnspython_lru_warm"] = warm
    await settle()
    out["aiodns"] = await bench_aiodns(host, int(port), fresh_names(f"ad{tag}", n), c)
    await settle()
    out["dnscache_cold"], out["dnscache_warm"], out["dnscache_hit_serial"] = await bench_dnscache(
        address, fresh_names(f"sc{tag}", n), c)
    await settle()
    out["dnscache_resolve_many_cold"] = await bench_dnscache_bulk(address, fresh_names(f"sm{tag}", n), c)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    proc, address = start_server_process()
    n, c = args.names, args.concurrency
    results: dict[str, Any] = {"names": n, "concurrency": c, "rounds": args.rounds,
                               "load_average_before": os.getloadavg()[0]}
    rounds = []
    try:
        for index in range(args.rounds):
            rounds.append(await one_round(address, n, c, str(index)))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    for key in rounds[0]:
        results[key] = median_row([r[key] for r in rounds])
    # Ratios per round (side by side, same moment), then their median.
    results["ratio_cold_vs_aiodns"] = statistics.median(
        r["dnscache_cold"]["qps"] / r["aiodns"]["qps"] for r in rounds)
    results["ratio_bulk_cold_vs_aiodns"] = statistics.median(
        r["dnscache_resolve_many_cold"]["qps"] / r["aiodns"]["qps"] for r in rounds)
    results["ratio_cpu_aiodns_vs_cold"] = statistics.median(
        r["aiodns"]["cpu_us"] / r["dnscache_cold"]["cpu_us"] for r in rounds)
    results["ratio_warm_vs_dnspython_lru"] = statistics.median(
        r["dnscache_warm"]["qps"] / r["dnspython_lru_warm"]["qps"] for r in rounds)
    results["coalescing_1000_queries"] = await bench_coalescing(1000)
    return results


def report(results: dict[str, Any]) -> None:
    print(f"{results['names']} fresh names per contender (dnspython: up to 5,000), "
          f"{results['concurrency']} workers, rdtype A, median of {results['rounds']} rounds "
          f"(load average before: {results['load_average_before']:.1f})\n")
    print(f"{'contender':32} {'q/s':>10} {'CPU us/q':>10} {'failed':>7}")
    for key in ("dnspython", "dnspython_lru_cold", "dnspython_lru_warm", "aiodns", "dnscache_cold",
                "dnscache_resolve_many_cold", "dnscache_warm", "dnscache_hit_serial"):
        row = results[key]
        print(f"{key:32} {row['qps']:>10,.0f} {row['cpu_us']:>10.1f} {row['failures']:>7}")
    print()
    print(f"DNSCache cold / aiodns:              {results['ratio_cold_vs_aiodns']:.2f}x  (target >= 2)")
    print(f"DNSCache resolve_many / aiodns:      {results['ratio_bulk_cold_vs_aiodns']:.2f}x")
    print(f"aiodns CPU / DNSCache cold CPU:      {results['ratio_cpu_aiodns_vs_cold']:.2f}x")
    print(f"DNSCache warm / dnspython+LRUCache:  {results['ratio_warm_vs_dnspython_lru']:.2f}x  "
          "(target >= 2)")
    print(f"coalescing: 1,000 concurrent resolves -> {results['coalescing_1000_queries']} upstream "
          "query(ies) (target 1)")


def recon(args: argparse.Namespace) -> None:
    """The recon measurements (dns_recon.py), printed as tables or JSON."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dns_recon

    results: dict[str, Any] = {"load_average_before": os.getloadavg()[0]}
    if args.types:
        results["types"] = asyncio.run(dns_recon.bench_types(min(args.names, 5_000), args.concurrency))
    if args.stream:
        results["stream"] = dns_recon.bench_stream(args.stream, 256)
    if args.pool:
        results["pool"] = asyncio.run(dns_recon.bench_pool(min(args.names, 5_000), 100))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"load average before: {results['load_average_before']:.1f}")
    if "types" in results:
        dns_recon.report_types(results["types"])
    for key in ("stream", "pool"):
        if key in results:
            print(f"{key}: " + ", ".join(f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in results[key].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 names, one round")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--types", action="store_true", help="every record type vs aiodns")
    parser.add_argument("--stream", type=int, nargs="?", const=1_000_000, metavar="N",
                        help="a streamed `scancache resolve -i` of N names: rate and peak RSS")
    parser.add_argument("--pool", action="store_true", help="a 20-resolver pool, 5 misbehaving")
    args = parser.parse_args()
    if args.quick:
        args.names, args.rounds = 2_000, 1
    if args.types or args.stream or args.pool:
        recon(args)
        return
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
