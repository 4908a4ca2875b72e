"""The seed document's usage examples, run as written against loopback DNS, OSV/NVD and Redis servers.

Each test copies an example's code verbatim (inside an async function where the example uses
`await`); only the environment changes: SCANCACHE_DNS_NAMESERVERS, SCANCACHE_OSV_URL,
SCANCACHE_NVD_URL and SCANCACHE_REDIS_URL point at servers the tests start on 127.0.0.1, which is
exactly how the public contract says the examples run without the internet. Names the examples
leave undefined (`logger`, `send_metrics_to_monitoring_system`, `main`) are defined here as a
user's program would define them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import scancache
from fixtures_dns import DEFAULT_RECORDS
from lazy_fixtures import FixtureModules, counts
from scancache import (
    CacheConfig,
    CacheType,
    DNSCache,
    LazyLoadConfig,
    LazyLoadStrategy,
    LazyModuleLoader,
    VulnerabilityDBCache,
    load_config_from_file,
)
from scancache.testing.dns_server import LoopbackDNSServer
from scancache.testing.osv_server import OSVTestServer

logger = logging.getLogger("seed-example")

#: The names the seed's examples resolve, each answered by the loopback DNS server.
SEED_DOMAINS = {"google.com": "192.0.2.200", "github.com": "192.0.2.201",
                "stackoverflow.com": "192.0.2.202"}
#: Every name seed-api.md promises importable from `scancache`.
PUBLIC_NAMES = ["LazyLoadConfig", "LazyLoadStrategy", "LazyModuleLoader", "CacheConfig", "CacheType",
                "DNSCache", "VulnerabilityDBCache", "load_config_from_file"]


@pytest.fixture
def seed_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackDNSServer]:
    """A loopback DNS server that answers the seed's domains (A only), named by the environment."""
    with LoopbackDNSServer(DEFAULT_RECORDS, ttl=300, soa_minimum=60) as server:
        for name, address in SEED_DOMAINS.items():
            server.set_records(name, "A", [address])
        monkeypatch.setenv("SCANCACHE_DNS_NAMESERVERS", server.address)
        yield server


@pytest.fixture
def seed_osv(monkeypatch: pytest.MonkeyPatch, osv_server: OSVTestServer) -> OSVTestServer:
    """The loopback OSV + NVD server (it serves CVE-2021-44228 on its NVD endpoint), by environment."""
    monkeypatch.setenv("SCANCACHE_OSV_URL", osv_server.url)
    monkeypatch.setenv("SCANCACHE_NVD_URL", osv_server.nvd_url)
    return osv_server


@pytest.fixture
def seed_env(seed_dns: LoopbackDNSServer, seed_osv: OSVTestServer) -> tuple[LoopbackDNSServer, OSVTestServer]:
    """Both servers, for the examples that use DNS and vulnerability caches together."""
    return seed_dns, seed_osv


@pytest.fixture
def fx(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FixtureModules]:
    """Generated modules (e.g. one whose import blocks) for the error-handling example."""
    monkeypatch.delenv("SCANCACHE_EAGER", raising=False)
    modules = FixtureModules(tmp_path / "mods")
    yield modules
    modules.cleanup()


def require_rss_below_seed_budget() -> None:
    """Skip when this test process alone is over the seed's memory_limit_mb=256: the loader would then
    rightly refuse every import (ModuleLoadRefused), which is not what the example is about."""
    from scancache.lazyload.monitor import current_rss_bytes

    rss = current_rss_bytes() or 0
    if rss > 200 * 1024 * 1024:
        pytest.skip(f"test process RSS {rss / 2**20:.0f} MB is too close to the seed's 256 MB budget")


def test_every_public_name_of_the_contract_is_importable_from_scancache():
    for name in PUBLIC_NAMES:
        assert getattr(scancache, name) is not None, name
        assert name in scancache.__all__, name
    assert [s.name for s in LazyLoadStrategy] == ["ON_DEMAND", "BACKGROUND", "PRELOAD", "CONDITIONAL"]
    assert [t.name for t in CacheType] == ["MEMORY", "DISK", "REDIS", "HYBRID"]


def test_the_seeds_configuration_blocks_construct_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cache_dir="cache" is relative: keep it in the test's directory
    lazy_config = LazyLoadConfig(
        strategy=LazyLoadStrategy.ON_DEMAND,  # Loading strategy
        preload_modules=[],                   # Modules to preload
        background_workers=2,                 # Background worker count
        load_timeout=30.0,                   # Load timeout
        enable_monitoring=True,              # Performance monitoring
        cache_loaded_modules=True,           # Cache loaded modules
        memory_limit_mb=256                  # Memory limit
    )
    cache_config = CacheConfig(
        cache_type=CacheType.MEMORY,         # Cache backend type
        max_size=1000,                       # Maximum cache size
        ttl_seconds=3600,                    # Time-to-live
        cleanup_interval=300,                # Cleanup frequency
        enable_compression=True,             # Enable compression
        enable_persistence=True,             # Enable persistence
        cache_dir="cache",                   # Cache directory
        redis_url=None,                      # Redis URL
        enable_metrics=True,                 # Enable metrics
        thread_safe=True,                    # Thread safety
        max_memory_mb=512                    # Memory limit
    )
    assert lazy_config.memory_limit_mb == 256 and lazy_config.load_timeout == 30.0
    assert cache_config.max_size == 1000 and cache_config.max_memory_mb == 512
    assert cache_config.cache_dir == "cache"


# ---------------------------------------------------------------------- lazy module loading
async def test_lazy_loading_example_as_written_fails_only_because_numpy_is_absent():
    require_rss_below_seed_budget()
    # numpy and pandas are not installed here: the example as written must fail with the import's
    # own ModuleNotFoundError (what a user without numpy sees), nothing else.
    with pytest.raises(ModuleNotFoundError) as info:
        # Configure lazy loader
        config = LazyLoadConfig(
            strategy=LazyLoadStrategy.ON_DEMAND,
            enable_monitoring=True,
            memory_limit_mb=256
        )

        # Create lazy loader
        async with LazyModuleLoader(config) as loader:
            # Load heavy modules on demand
            numpy = await loader.load_module("numpy")  # noqa: F841 (the seed's code, verbatim)
            pandas = await loader.load_module("pandas")  # noqa: F841

            # Get monitoring data
            stats = loader.get_monitoring_data()
            print(f"Memory usage: {stats['current_memory_mb']:.1f}MB")
    assert info.value.name == "numpy"
    data = loader.get_monitoring_data()
    assert data["modules"]["numpy"]["status"] == "missing"
    assert "pandas" not in data["modules"]  # the example stopped at numpy


async def test_lazy_loading_example_with_stdlib_modules_in_place_of_numpy_and_pandas(capsys):
    require_rss_below_seed_budget()
    # The same code with "decimal" and "json" standing in for numpy and pandas (not installed here).
    # Configure lazy loader
    config = LazyLoadConfig(
        strategy=LazyLoadStrategy.ON_DEMAND,
        enable_monitoring=True,
        memory_limit_mb=256
    )

    # Create lazy loader
    async with LazyModuleLoader(config) as loader:
        # Load heavy modules on demand
        numpy = await loader.load_module("decimal")
        pandas = await loader.load_module("json")

        # Get monitoring data
        stats = loader.get_monitoring_data()
        print(f"Memory usage: {stats['current_memory_mb']:.1f}MB")

    assert numpy.Decimal("1.10") + numpy.Decimal("2.20") == numpy.Decimal("3.30")
    assert pandas.loads("[1]") == [1]
    printed = capsys.readouterr().out
    assert printed.startswith("Memory usage: ") and printed.rstrip().endswith("MB")
    assert stats["current_memory_mb"] > 1
    assert stats["modules"]["decimal"]["status"] == "loaded"
    assert stats["modules"]["json"]["status"] == "loaded"
    for key in ("loaded_count", "failed_count", "modules"):  # what seed-api.md promises beyond memory
        assert key in stats
    assert stats["loaded_count"] >= 2 and stats["failed_count"] == 0
    assert {"load_seconds", "memory_delta_mb"} <= set(stats["modules"]["decimal"])
    json.dumps(stats)  # monitoring data goes to monitoring systems: it must serialise


# ---------------------------------------------------------------------- DNS caching
async def test_dns_caching_example(seed_dns, capsys):
    # Configure DNS cache
    config = CacheConfig(
        cache_type=CacheType.MEMORY,
        max_size=100,
        ttl_seconds=3600
    )

    # Create DNS cache
    dns_cache = DNSCache(config)

    # Resolve domains with caching
    ips = await dns_cache.resolve("google.com")
    cached_ips = await dns_cache.resolve("google.com")  # Cache hit

    # Get cache statistics
    stats = dns_cache.get_stats()
    print(f"Cache hit rate: {stats['hit_rate']:.2%}")

    try:
        assert ips == cached_ips == [SEED_DOMAINS["google.com"]]
        assert capsys.readouterr().out == "Cache hit rate: 50.00%\n"
        assert stats["hits"] == 1 and stats["misses"] == 1 and stats["size"] == 1
        for key in ("hits", "misses", "hit_rate", "size", "evictions"):
            assert key in stats
        assert seed_dns.query_count("google.com") == 2  # A and AAAA once each; the hit asked nothing
    finally:
        await dns_cache.aclose()


@pytest.mark.parametrize("cache_type", [CacheType.DISK, CacheType.HYBRID, CacheType.REDIS])
async def test_dns_caching_example_on_every_backend(seed_dns, cache_type, tmp_path, monkeypatch, request):
    # The example with only cache_type changed; the disk cache goes to SCANCACHE_CACHE_DIR and Redis to
    # SCANCACHE_REDIS_URL, the way a deployment would configure them.
    monkeypatch.setenv("SCANCACHE_CACHE_DIR", str(tmp_path / "cache"))
    if cache_type is CacheType.REDIS:
        monkeypatch.setenv("SCANCACHE_REDIS_URL", request.getfixturevalue("redis_url"))
    config = CacheConfig(
        cache_type=cache_type,
        max_size=100,
        ttl_seconds=3600
    )
    dns_cache = DNSCache(config)
    try:
        ips = await dns_cache.resolve("google.com")
        cached_ips = await dns_cache.resolve("google.com")  # Cache hit
        stats = dns_cache.get_stats()
        assert ips == cached_ips == [SEED_DOMAINS["google.com"]]
        assert stats["hit_rate"] == pytest.approx(0.5)
        assert seed_dns.query_count("google.com") == 2
    finally:
        await dns_cache.aclose()


# ---------------------------------------------------------------------- vulnerability caching
async def test_vulnerability_caching_example(seed_osv, capsys):
    # Configure vulnerability cache
    config = CacheConfig(
        cache_type=CacheType.MEMORY,
        max_size=50,
        ttl_seconds=1800
    )

    # Create vulnerability cache
    vuln_cache = VulnerabilityDBCache(config)

    # Query vulnerability database with caching
    query = {"cve_id": "CVE-2021-44228", "product": "log4j"}
    result = await vuln_cache.query_vulnerability_db(query)
    cached_result = await vuln_cache.query_vulnerability_db(query)  # Cache hit

    # Get cache statistics
    stats = vuln_cache.get_stats()
    print(f"Cache hit rate: {stats['hit_rate']:.2%}")

    try:
        assert result == cached_result
        assert [r["id"] for r in result] == ["CVE-2021-44228"]
        assert "log4j" in json.dumps(result[0]).lower()
        assert capsys.readouterr().out == "Cache hit rate: 50.00%\n"
        # OSV has no record under the CVE id (404), so NVD answered; the hit asked neither again.
        assert seed_osv.requests["/rest/json/cves/2.0"] == 1
        assert seed_osv.requests["/v1/vulns"] == 1
        assert stats["hits"] == 1 and stats["misses"] == 1
        for key in ("hits", "misses", "hit_rate", "size", "evictions"):
            assert key in stats
    finally:
        await vuln_cache.aclose()


# ---------------------------------------------------------------------- integration patterns
async def integrate_with_monitoring(loader, dns_cache, vuln_cache):
    loader_stats = loader.get_monitoring_data()
    dns_stats = dns_cache.get_stats()
    vuln_stats = vuln_cache.get_stats()

    await send_metrics_to_monitoring_system({
        "lazy_loading": loader_stats,
        "dns_caching": dns_stats,
        "vulnerability_caching": vuln_stats
    })


SENT_METRICS: list[str] = []


async def send_metrics_to_monitoring_system(metrics: dict[str, Any]) -> None:
    """What a monitoring client does with the metrics: serialise them as JSON and ship them."""
    SENT_METRICS.append(json.dumps(metrics))


async def send_performance_metrics(metrics: dict[str, Any]) -> None:
    """Ship one sample, then stop the example's endless loop (a test cannot wait a minute)."""
    SENT_METRICS.append(json.dumps(metrics))
    raise asyncio.CancelledError  # what the loop sees when its task is cancelled at shutdown


async def monitor_performance(loader, dns_cache, vuln_cache):
    while True:
        loader_stats = loader.get_monitoring_data()
        dns_stats = dns_cache.get_stats()
        vuln_stats = vuln_cache.get_stats()

        await send_performance_metrics({
            "lazy_loading": loader_stats,
            "dns_caching": dns_stats,
            "vulnerability_caching": vuln_stats
        })

        await asyncio.sleep(60)  # Monitor every minute


async def warm_cache(dns_cache, vuln_cache):
    # Warm DNS cache
    common_domains = ["google.com", "github.com", "stackoverflow.com"]
    for domain in common_domains:
        await dns_cache.resolve(domain)

    # Warm vulnerability cache
    common_queries = [
        {"cve_id": "CVE-2021-44228", "product": "log4j"},
        {"product": "apache", "version": "2.4.49"}
    ]
    for query in common_queries:
        await vuln_cache.query_vulnerability_db(query)


async def safe_module_loading(loader, module_name):
    try:
        module = await loader.load_module(module_name)
        return module
    except ImportError as e:
        logger.error(f"Module {module_name} not available: {e}")
        return None
    except TimeoutError as e:
        logger.error(f"Module {module_name} loading timed out: {e}")
        return None
    except Exception as e:
        logger.error(f"Failed to load module {module_name}: {e}")
        return None


CACHING_CONFIG_YAML = """\
lazy_loading:
  strategy: on_demand
  memory_limit_mb: 256
dns_caching:
  cache_type: memory
  max_size: 100
  ttl_seconds: 3600
vulnerability_caching:
  cache_type: memory
  max_size: 50
  ttl_seconds: 1800
"""


async def test_configuration_management_pattern_and_monitoring_integration(seed_env, tmp_path, monkeypatch):
    seed_dns, seed_osv = seed_env
    monkeypatch.chdir(tmp_path)
    (tmp_path / "caching_config.yaml").write_text(CACHING_CONFIG_YAML)
    SENT_METRICS.clear()

    # Load configuration from external source
    config = load_config_from_file("caching_config.yaml")
    loader = LazyModuleLoader(config.lazy_loading)
    dns_cache = DNSCache(config.dns_caching)
    vuln_cache = VulnerabilityDBCache(config.vulnerability_caching)

    try:
        assert dns_cache.config.max_size == 100 and vuln_cache.config.ttl_seconds == 1800
        assert dns_cache.nameservers == [seed_dns.address]  # from SCANCACHE_DNS_NAMESERVERS
        assert vuln_cache.config.osv_url == seed_osv.url
        await loader.load_module("json")
        await dns_cache.resolve("github.com")
        await vuln_cache.query_vulnerability_db({"product": "jinja2", "version": "2.4",
                                                 "ecosystem": "PyPI"})
        await integrate_with_monitoring(loader, dns_cache, vuln_cache)
        with pytest.raises(asyncio.CancelledError):
            await monitor_performance(loader, dns_cache, vuln_cache)
    finally:
        loader.close()
        await dns_cache.aclose()
        await vuln_cache.aclose()

    assert len(SENT_METRICS) == 2
    for sent in SENT_METRICS:
        metrics = json.loads(sent)
        assert metrics["lazy_loading"]["modules"]["json"]["status"] == "loaded"
        assert metrics["dns_caching"]["misses"] == 1 and metrics["dns_caching"]["size"] == 1
        assert metrics["vulnerability_caching"]["requests_total"] >= 1


async def test_debugging_techniques(seed_env, capsys):
    loader = LazyModuleLoader(LazyLoadConfig(memory_limit_mb=4096))  # budgets are not the point here
    dns_cache = DNSCache(CacheConfig(max_size=100))
    vuln_cache = VulnerabilityDBCache(CacheConfig(max_size=50))
    root = logging.getLogger()
    level = root.level
    try:
        logging.getLogger().setLevel(logging.DEBUG)

        await warm_cache(dns_cache, vuln_cache)
        await loader.load_module("decimal")

        dns_stats = dns_cache.get_stats()
        vuln_stats = vuln_cache.get_stats()
        print(json.dumps({"dns": dns_stats, "vuln": vuln_stats}, indent=2))

        loader_stats = loader.get_monitoring_data()
        print(f"Memory usage: {loader_stats['current_memory_mb']:.1f}MB")
    finally:
        root.setLevel(level)
        loader.close()
        await dns_cache.aclose()
        await vuln_cache.aclose()

    out = capsys.readouterr().out
    dumped, _, memory_line = out.rstrip("\n").rpartition("\n")
    parsed = json.loads(dumped)
    assert parsed["dns"]["size"] == 3 and parsed["dns"]["misses"] == 3
    assert parsed["vuln"]["misses"] == 2
    assert memory_line.startswith("Memory usage: ") and memory_line.endswith("MB")
    assert float(memory_line.removeprefix("Memory usage: ").removesuffix("MB")) > 1


async def test_error_handling_pattern_sees_import_and_timeout_errors(fx, caplog):
    gated = fx.gated()
    # The gated import blocks until the test ends, so it times out whatever the bound; a bound of a
    # second leaves the two quick loads (a missing module, json) their time on a loaded machine.
    loader = LazyModuleLoader(LazyLoadConfig(load_timeout=1.0, memory_limit_mb=4096))
    try:
        with caplog.at_level(logging.ERROR, logger="seed-example"):
            assert await safe_module_loading(loader, "numpy") is None  # not installed here
            assert await safe_module_loading(loader, gated) is None  # its import blocks on a gate
            assert (await safe_module_loading(loader, "json")).loads("2") == 2
        messages = [r.getMessage() for r in caplog.records if r.name == "seed-example"]
        assert messages[0].startswith("Module numpy not available: No module named 'numpy'")
        assert messages[1].startswith(f"Module {gated} loading timed out: ")
        assert "load_timeout" in messages[1]
        assert len(messages) == 2
    finally:
        counts.gate(gated).set()  # let the blocked import finish in its thread
        loader.close()


async def test_cache_warming_makes_the_second_round_free(seed_env):
    seed_dns, seed_osv = seed_env
    dns_cache = DNSCache(CacheConfig(cache_type=CacheType.MEMORY, max_size=100, ttl_seconds=3600))
    vuln_cache = VulnerabilityDBCache(CacheConfig(cache_type=CacheType.MEMORY, max_size=50,
                                                  ttl_seconds=1800))
    try:
        await warm_cache(dns_cache, vuln_cache)
        dns_queries, http_requests = seed_dns.total_queries, seed_osv.total_requests
        assert dns_queries == 6  # A and AAAA for each of three names
        await warm_cache(dns_cache, vuln_cache)
        assert seed_dns.total_queries == dns_queries and seed_osv.total_requests == http_requests
        assert dns_cache.get_stats()["hits"] == 3 and vuln_cache.get_stats()["hits"] == 2
        for domain, address in SEED_DOMAINS.items():
            assert await dns_cache.resolve(domain) == [address]
    finally:
        await dns_cache.aclose()
        await vuln_cache.aclose()


def test_profile_performance_example(seed_env, monkeypatch, capsys):
    # cProfile.run executes its statement in __main__'s namespace, where a user's script defines
    # main(); under pytest __main__ is pytest's, so put the script's names there.
    import cProfile

    import __main__

    async def main() -> None:
        dns_cache = DNSCache(CacheConfig(max_size=100))
        vuln_cache = VulnerabilityDBCache(CacheConfig(max_size=50))
        try:
            await warm_cache(dns_cache, vuln_cache)
        finally:
            await dns_cache.aclose()
            await vuln_cache.aclose()

    monkeypatch.setattr(__main__, "main", main, raising=False)
    monkeypatch.setattr(__main__, "asyncio", asyncio, raising=False)

    cProfile.run('asyncio.run(main())')

    assert "function calls" in capsys.readouterr().out
    seed_dns, _ = seed_env
    assert seed_dns.query_count("google.com") == 2
