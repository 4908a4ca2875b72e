"""The recon parts of bench_dns.py: every record type, a streamed million names, a resolver pool.

- types: for each record type, DNSCache.query cold (fresh names) and warm (the same names again)
  against aiodns where aiodns asks that type, one loopback server process serving a wildcard zone
  per type. Printed: queries/s and the ratio cold DNSCache / aiodns.
- stream: `scancache resolve -i FILE` on N names (default 1,000,000) as a whole process against the
  loopback server: wall time, names/s and the child's peak RSS (memory cache, LRU-bounded, so RSS
  shows what streaming itself costs).
- pool: 20 loopback resolvers, 5 misbehaving (2 lie, 2 time out, 1 REFUSES), one trusted; N fresh
  names of which half exist: the share of queries the bad ones still get after scoring, wrong
  answers returned (target 0), retries.
Run through bench_dns.py: --types, --stream [N], --pool.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_dns import drive as _drive  # one timing loop and one server for the A comparison and recon
from bench_dns import start_server_process as start_server
from scancache.dns.cache import DNSCache
from scancache.dns.config import DNSConfig

ZONE = "bench.test"
#: (type, wildcard record value, whether aiodns asks it)
TYPES = [
    ("A", "198.51.100.1", True), ("AAAA", "2001:db8::1", True), ("CNAME", "target.bench.test", True),
    ("NS", "ns1.bench.test.", True), ("MX", "10 mail.bench.test.", True),
    ("TXT", "v=spf1 include:_spf.bench.test -all", True),
    ("SOA", "ns1.bench.test. hostmaster.bench.test. 1 3600 600 86400 60", True),
    ("SRV", "0 5 443 srv.bench.test.", True), ("CAA", '0 issue "ca.bench.test"', True),
    ("PTR", "host.bench.test.", True), ("HTTPS", '1 . alpn="h2,h3"', False),
    ("SVCB", "1 svc.bench.test. port=8443", False),
]


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(10)


async def bench_types(n: int, concurrency: int) -> dict[str, Any]:
    """Per type: DNSCache cold and warm, aiodns cold (fresh names each), side by side."""
    records = [f"*.{t.lower()}.{ZONE}/{t}={v}" for t, v, _ in TYPES]
    records.append(f"target.{ZONE}=198.51.100.2")
    proc, address = start_server(records)
    host, port = address.rsplit(":", 1)
    out: dict[str, Any] = {}
    try:
        import aiodns

        for rdtype, _, aiodns_asks in TYPES:
            row: dict[str, Any] = {}
            names = [f"c{i}.{rdtype.lower()}.{ZONE}" for i in range(n)]
            config = DNSConfig(max_size=n * 2 + 10, max_memory_mb=512)
            async with DNSCache(config, nameservers=[address]) as dns:
                row["cold"] = await _drive(lambda name, t=rdtype: dns.query(name, t), names,
                                           concurrency)
                row["warm"] = await _drive(lambda name, t=rdtype: dns.query(name, t), names,
                                           concurrency)
            if aiodns_asks:
                resolver = aiodns.DNSResolver(nameservers=[host], udp_port=int(port),
                                              tcp_port=int(port), timeout=2.0, tries=3)
                query = getattr(resolver, "query_dns", None) or resolver.query
                fresh = [f"a{i}.{rdtype.lower()}.{ZONE}" for i in range(n)]
                row["aiodns"] = await _drive(lambda name, t=rdtype, q=query: q(name, t), fresh,
                                             concurrency)
                close = getattr(resolver, "close", None)
                if close is not None:
                    result = close()
                    if asyncio.iscoroutine(result):
                        await result
                row["ratio_cold_vs_aiodns"] = row["cold"]["qps"] / row["aiodns"]["qps"]
            out[rdtype] = row
    finally:
        stop_server(proc)
    return out


def bench_stream(n: int, concurrency: int) -> dict[str, Any]:
    """A whole `scancache resolve -i FILE` process on n names: wall, rate and peak RSS."""
    proc, address = start_server([f"*.{ZONE}=198.51.100.1"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            names = os.path.join(tmp, "names.txt")
            with open(names, "w") as f:
                for i in range(n):
                    f.write(f"s{i}.{ZONE}\n")
            env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
            env["SCANCACHE_CACHE_DIR"] = os.path.join(tmp, "cache")
            args = [sys.executable, "-m", "scancache", "--cache-type", "memory", "resolve", "-i",
                    names, "--rdtype", "A", "--nameserver", address, "--concurrency",
                    str(concurrency)]
            started = time.perf_counter()
            with open(os.devnull, "w") as sink:
                child = subprocess.Popen(args, stdout=sink, stderr=subprocess.PIPE, env=env)
                _, status, usage = os.wait4(child.pid, 0)
                child.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - started
    finally:
        stop_server(proc)
    return {"names": n, "seconds": wall, "names_per_s": n / wall,
            "peak_rss_mb": usage.ru_maxrss / 1024, "exit": child.returncode}


async def bench_pool(n: int, concurrency: int) -> dict[str, Any]:
    """20 resolvers (5 misbehaving) and a trusted one: load share of the bad ones, wrong answers."""
    from scancache.dns.pool import ResolverPool
    from scancache.testing.dns_server import LoopbackDNSServer

    real = {f"real{i}.{ZONE}": f"198.51.100.{i % 250 + 1}" for i in range(n // 2)}
    servers = [LoopbackDNSServer(real).start() for _ in range(16)]
    trusted = LoopbackDNSServer(real).start()
    liars = [LoopbackDNSServer({f"*.{ZONE}": "203.0.113.66"}).start() for _ in range(2)]
    silent = [LoopbackDNSServer(real).start() for _ in range(2)]
    refuser = LoopbackDNSServer(real).start()
    for server in silent:
        server.drop()
    refuser.refuse()
    bad = [*liars, *silent, refuser]
    everyone = [*servers[:15], *bad]
    try:
        pool = ResolverPool([s.address for s in everyone], trusted=[trusted.address],
                            timeout_seconds=0.9, attempts=3)
        names = [*real, *(f"ghost{i}.{ZONE}" for i in range(n - len(real)))]
        wrong = failed = 0
        started = time.perf_counter()
        async with DNSCache(DNSConfig(max_size=n + 10), upstream=pool) as dns:
            async for name, result in dns.query_many(names, rdtype="A", concurrency=concurrency):
                if isinstance(result, Exception):
                    failed += 1
                elif result.addresses != ([real[name]] if name in real else []):
                    wrong += 1
            stats = dns.get_stats()["resolvers"]
        wall = time.perf_counter() - started
        bad_addresses = {s.address for s in bad}
        sent = {address: figures["sent"] for address, figures in stats.items()
                if not figures["trusted"]}
        total = sum(sent.values())
        # The share in the last stretch shows what scoring did (the first queries are spread evenly).
        return {"names": n, "seconds": wall, "wrong_answers": wrong, "failed": failed,
                "bad_share_of_queries": sum(sent[a] for a in bad_addresses) / total,
                "even_share": len(bad) / len(everyone),
                "retried_elsewhere": pool.counters["retried_elsewhere"],
                "trusted_checks": pool.counters["trusted_checks"],
                "trusted_disagreed": pool.counters["trusted_disagreed"],
                "weights_of_bad": sorted(round(stats[a]["weight"], 3) for a in bad_addresses)}
    finally:
        for server in [*servers, trusted, *bad]:
            server.stop()


def report_types(out: dict[str, Any]) -> None:
    print(f"{'type':6} {'cold q/s':>10} {'warm q/s':>10} {'aiodns q/s':>11} {'cold/aiodns':>12}")
    for rdtype, row in out.items():
        aiodns = row.get("aiodns")
        print(f"{rdtype:6} {row['cold']['qps']:>10,.0f} {row['warm']['qps']:>10,.0f} "
              f"{(format(aiodns['qps'], ',.0f') if aiodns else 'n/a'):>11} "
              f"{(format(row['ratio_cold_vs_aiodns'], '.2f') + 'x' if aiodns else 'n/a'):>12}")
