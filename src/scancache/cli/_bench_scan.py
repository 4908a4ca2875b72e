"""The bench's scan workloads: host names through DNSCache and pinned packages through
VulnerabilityDBCache, each against a loopback server, cold and warm.

What is measured, and against what:
- response time: one query at a time, a miss (the upstream answers) against a hit (the cache does);
- throughput: queries a second with many in flight, all misses against all hits;
- network: requests the upstream received for a cold scan plus the next (warm) scan, against what a
  scanner without a cache sends (DNS: every lookup; OSV: one /v1/query per package and scan, which
  is what pip-audit does).
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BenchSizes", "bench_dns", "bench_osv", "builtin_osv_data", "generated_records",
           "requirements_for"]

#: The OSV records `scancache bench` serves when no --osv-data is given (CC-BY 4.0, see its README).
BUILTIN_OSV_DATA = "osv-pypi-sample.zip"
_DNS_ZONE = "bench.test"


@dataclasses.dataclass(frozen=True)
class BenchSizes:
    """How much work each part of the bench does."""

    hosts: int
    lookups_per_host: int
    dns_latency_samples: int
    packages: int
    osv_latency_samples: int
    concurrency: int = 64


def builtin_osv_data() -> Path | None:
    """Path of the OSV dump shipped in scancache.testing/data (None if this install lacks it)."""
    from importlib.resources import files

    path = Path(str(files("scancache.testing").joinpath("data", BUILTIN_OSV_DATA)))
    return path if path.is_file() else None


def generated_records(count: int = 100) -> dict[str, dict[str, Any]]:
    """OSV-shaped PyPI records made up on the spot: the fallback when no data file is at hand."""
    records = {}
    for i in range(count):
        vuln_id = f"BENCH-{i:04d}"
        records[vuln_id] = {
            "id": vuln_id, "modified": "2024-01-01T00:00:00Z", "published": "2024-01-01T00:00:00Z",
            "summary": "generated for scancache bench", "aliases": [f"CVE-2099-{i:04d}"],
            "affected": [{"package": {"ecosystem": "PyPI", "name": f"bench-vulnerable-{i}"},
                          "ranges": [{"type": "ECOSYSTEM",
                                      "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
                          "versions": ["1.0", "1.1"]}],
        }
    return records


def _summary_us(samples_ns: list[int]) -> dict[str, float]:
    if not samples_ns:
        return {"median": 0.0, "mean": 0.0, "samples": 0}
    return {"median": round(statistics.median(samples_ns) / 1000, 1),
            "mean": round(statistics.fmean(samples_ns) / 1000, 1), "samples": len(samples_ns)}


async def _sequential(call: Callable[[Any], Any], items: list[Any], step: Callable[[], None]
                      ) -> list[int]:
    """Latency in ns of call(item) for each item, one after another."""
    samples = []
    for item in items:
        start = time.perf_counter_ns()
        await call(item)
        samples.append(time.perf_counter_ns() - start)
    step()
    return samples


# ---------------------------------------------------------------------------------------- DNS
async def _resolve_all(dns: Any, names: list[str], concurrency: int) -> tuple[float, int]:
    """(seconds, failures) to resolve names with `concurrency` in flight."""
    start = time.perf_counter()
    failures = 0
    async for _, result in dns.resolve_many(names, concurrency=concurrency):
        failures += not isinstance(result, list)
    return time.perf_counter() - start, failures


async def bench_dns(sizes: BenchSizes, make_config: Callable[..., Any], step: Callable[[], None]
                    ) -> dict[str, Any]:
    """Measure DNSCache against a LoopbackDNSServer; make_config(cls, namespace) builds each config."""
    from scancache.dns.cache import DNSCache
    from scancache.dns.config import DNSConfig
    from scancache.testing.dns_server import LoopbackDNSServer

    server = LoopbackDNSServer(ttl=3600)
    server.add(f"*.{_DNS_ZONE}", "A", "192.0.2.10")
    server.add(f"*.{_DNS_ZONE}", "AAAA", "2001:db8::10")
    out: dict[str, Any] = {"server": "loopback UDP (no added latency)"}
    with server:
        ns = [server.address]
        # Response time and throughput: one cache, all misses then all hits.
        sample = [f"t{i}.{_DNS_ZONE}" for i in range(sizes.dns_latency_samples)]
        dns = DNSCache(make_config(DNSConfig, "bench-dns-speed"), nameservers=ns)
        try:
            miss_ns = await _sequential(dns.resolve, sample, step)
            hit_ns = await _sequential(dns.resolve, sample, step)
            fresh = [f"u{i}.{_DNS_ZONE}" for i in range(sizes.hosts)]
            miss_seconds, failures = await _resolve_all(dns, fresh, sizes.concurrency)
            step()
            hit_seconds, _ = await _resolve_all(dns, fresh, sizes.concurrency)
            step()
        finally:
            await dns.aclose()
        out["latency_miss_us"] = _summary_us(miss_ns)
        out["latency_hit_us"] = _summary_us(hit_ns)
        out["throughput_miss_qps"] = round(len(fresh) / miss_seconds, 1)
        out["throughput_hit_qps"] = round(len(fresh) / hit_seconds, 1)
        out["failures"] = failures

        # Network: a scan looks each host up several times; then the next scan (a new process,
        # here a new DNSCache over the same store) runs again.
        hosts = [f"s{i}.{_DNS_ZONE}" for i in range(sizes.hosts)]
        lookups = hosts * sizes.lookups_per_host
        random.Random(6).shuffle(lookups)
        scans = []
        for label in ("cold", "warm"):
            server.reset_counts()
            dns = DNSCache(make_config(DNSConfig, "bench-dns-scan"), nameservers=ns)
            try:
                seconds, failed = await _resolve_all(dns, lookups, sizes.concurrency)
            finally:
                await dns.aclose()
            scans.append({"scan": label, "seconds": round(seconds, 4), "lookups": len(lookups),
                          "upstream_queries": server.total_queries, "failures": failed})
            step()
    queries_per_lookup = 2  # A and AAAA: what a resolver without a cache sends for every lookup
    out["scan"] = {"hosts": sizes.hosts, "lookups_per_host": sizes.lookups_per_host, "runs": scans,
                   "queries_without_cache": 2 * len(lookups) * queries_per_lookup,
                   "queries_with_cache": sum(s["upstream_queries"] for s in scans)}
    return out


# ---------------------------------------------------------------------------------------- OSV
def requirements_for(records: dict[str, dict[str, Any]], count: int) -> list[str]:
    """`count` pinned requirement lines: about a third pinned to versions the records list as
    affected (vulnerable), the rest to packages no record names (clean)."""
    vulnerable: dict[str, str] = {}
    for record in sorted(records.values(), key=lambda r: r["id"]):
        if record.get("withdrawn"):
            continue
        for affected in record.get("affected") or ():
            package = affected.get("package") or {}
            versions = affected.get("versions") or []
            if package.get("ecosystem") == "PyPI" and versions:
                vulnerable.setdefault(package["name"], versions[-1])
    pins = [f"{name}=={version}" for name, version in vulnerable.items()][:max(1, count // 3)]
    pins += [f"bench-clean-{i}==1.0.{i}" for i in range(count - len(pins))]
    return pins[:count]


async def bench_osv(sizes: BenchSizes, make_config: Callable[..., Any], step: Callable[[], None],
                    data: Path | None) -> dict[str, Any]:
    """Measure VulnerabilityDBCache against an OSVTestServer serving data (an OSV all.zip or a
    directory of records; None: generated records)."""
    from scancache.testing.osv_server import OSVTestServer, load_records
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig

    records = load_records(data) if data is not None else generated_records()
    lines = requirements_for(records, sizes.packages)
    out: dict[str, Any] = {"server": "loopback HTTP (no added latency)", "records": len(records),
                           "data": str(data) if data is not None else "generated"}
    with OSVTestServer(records) as server:
        def config(namespace: str) -> Any:
            return make_config(VulnDBConfig, namespace, osv_url=server.url, max_retries=0)

        # Response time: one package at a time, miss then hit.
        queries = [{"package": line.split("==")[0], "version": line.split("==")[1],
                    "ecosystem": "PyPI"} for line in lines[:sizes.osv_latency_samples]]
        async with VulnerabilityDBCache(config("bench-osv-speed")) as vulndb:
            miss_ns = await _sequential(vulndb.query_vulnerability_db, queries, step)
            hit_ns = await _sequential(vulndb.query_vulnerability_db, queries, step)
        out["latency_miss_us"] = _summary_us(miss_ns)
        out["latency_hit_us"] = _summary_us(hit_ns)

        # Audit: a cold scan, then the next scan with a new cache object over the same store.
        audits: list[dict[str, Any]] = []
        for label in ("cold", "warm"):
            server.reset_counts()
            async with VulnerabilityDBCache(config("bench-osv-audit")) as vulndb:
                start = time.perf_counter()
                report = await vulndb.audit(lines)
                seconds = time.perf_counter() - start
            audits.append({"scan": label, "seconds": round(seconds, 4), "packages": len(lines),
                           "vulnerable_packages": len(report.vulnerable_packages),
                           "requests": server.total_requests})
            step()
    out["audit"] = {"packages": len(lines), "runs": audits,
                    "requests_without_cache": 2 * len(lines),
                    "requests_with_cache": sum(a["requests"] for a in audits)}
    cold, warm = audits
    out["throughput_cold_pps"] = round(len(lines) / cold["seconds"], 1)
    out["throughput_warm_pps"] = round(len(lines) / warm["seconds"], 1)
    return out

