"""scancache.metrics: one JSON view of every stats source and its Prometheus text; the metrics command."""

from __future__ import annotations

import gc
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from scancache import metrics
from scancache.cache.core import Cache
from scancache.config import CacheConfig
from support import cli_env, start_cli

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_VALUE = r"(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|[+-]Inf)"
SAMPLE_LINE = re.compile(rf"^(?P<name>{_NAME})(?P<labels>\{{{_LABEL}(?:,{_LABEL})*\}})? (?P<value>{_VALUE})$")
HELP_LINE = re.compile(rf"^# HELP (?P<name>{_NAME}) \S.*$")
TYPE_LINE = re.compile(rf"^# TYPE (?P<name>{_NAME}) (?P<kind>counter|gauge|summary|histogram|untyped)$")


def parse_exposition(text: str) -> dict[str, dict[str, Any]]:
    """{family: {"kind", "help", "samples": [(labels text, value)]}}; fails on any malformed line,
    a sample before its family's TYPE, a family declared twice, or a counter not named *_total."""
    assert text.endswith("\n")
    families: dict[str, dict[str, Any]] = {}
    current = None
    for line in text.splitlines():
        if match := HELP_LINE.match(line):
            name = match["name"]
            assert name not in families, f"family {name} declared twice"
            families[name] = {"help": line, "kind": None, "samples": []}
            current = name
        elif match := TYPE_LINE.match(line):
            assert match["name"] == current, f"TYPE without its HELP: {line}"
            families[current]["kind"] = match["kind"]
            if match["kind"] == "counter":
                assert current.endswith("_total"), current
        else:
            match = SAMPLE_LINE.match(line)
            assert match, f"not a valid sample line: {line!r}"
            assert match["name"] == current and families[current]["kind"], line
            families[current]["samples"].append((match["labels"] or "", float(match["value"])))
    return families


def value_of(families: dict[str, dict[str, Any]], name: str, labels: str) -> float:
    """The value of the sample of family `name` whose label text is exactly `labels`."""
    found = [v for text, v in families[name]["samples"] if text == labels]
    assert len(found) == 1, (name, labels, families.get(name))
    return found[0]


@pytest.fixture
def registry() -> metrics.MetricsRegistry:
    return metrics.MetricsRegistry()


def filled_cache(name: str) -> Cache:
    cache = Cache(CacheConfig(namespace=name), name=name)
    for i in range(20):
        cache.set(f"k{i}", {"value": i})
    for i in range(30):
        cache.get(f"k{i}")  # 20 hits, 10 misses
    return cache


def test_cache_stats_render_as_counters_and_gauges(registry: metrics.MetricsRegistry) -> None:
    cache = filled_cache("dns")
    registry.register_cache("dns", cache)
    data = registry.collect()
    assert data["caches"]["dns"]["hits"] == 20
    families = parse_exposition(metrics.render_prometheus(data))
    assert families["scancache_cache_hits_total"]["kind"] == "counter"
    assert value_of(families, "scancache_cache_hits_total", '{cache="dns"}') == 20
    assert value_of(families, "scancache_cache_misses_total", '{cache="dns"}') == 10
    assert families["scancache_cache_entries"]["kind"] == "gauge"
    assert value_of(families, "scancache_cache_entries", '{cache="dns"}') == 20
    assert value_of(families, "scancache_cache_hit_ratio", '{cache="dns"}') == pytest.approx(2 / 3)
    assert value_of(families, "scancache_cache_info", '{cache="dns",backend="memory"}') == 1
    assert families["scancache_process_resident_memory_bytes"]["samples"][0][1] > 0
    latency = families["scancache_cache_latency_seconds"]
    assert latency["kind"] == "gauge"
    assert any('quantile="0.99"' in text for text, _ in latency["samples"])


def test_monitoring_data_is_json(registry: metrics.MetricsRegistry) -> None:
    cache = filled_cache("vulndb")
    registry.register_cache("vulndb", cache)
    data = json.loads(json.dumps(metrics.get_monitoring_data(registry)))
    assert data["caches"]["vulndb"]["size"] == 20
    assert set(data) >= {"version", "time", "process", "caches", "loaders", "errors"}


def test_label_values_are_escaped(registry: metrics.MetricsRegistry) -> None:
    cache = filled_cache("plain")
    name = 'odd "name"\\with\nnewline'
    registry.register_cache(name, cache)
    families = parse_exposition(metrics.render_prometheus(registry.collect()))
    assert value_of(families, "scancache_cache_hits_total",
                    '{cache="odd \\"name\\"\\\\with\\nnewline"}') == 20


def test_unknown_numbers_are_untyped_and_never_clash(registry: metrics.MetricsRegistry) -> None:
    class Source:
        def get_stats(self) -> dict[str, Any]:
            return {"hits": 3, "entries": 7, "widgets_seen": 2, "per_shard": {"a": 1, "b": 2},
                    "label": "text is skipped", "requests": {"/v1/querybatch": 4}}

    source = Source()
    registry.register_cache("odd", source)
    families = parse_exposition(metrics.render_prometheus(registry.collect()))
    assert families["scancache_cache_widgets_seen"]["kind"] == "untyped"
    assert value_of(families, "scancache_cache_per_shard", '{cache="odd",key="b"}') == 2
    assert "scancache_cache_entries" not in families  # "entries" would clash with a gauge: skipped
    assert value_of(families, "scancache_upstream_requests_total",
                    '{cache="odd",endpoint="/v1/querybatch"}') == 4


def test_a_failing_source_is_reported_not_raised(registry: metrics.MetricsRegistry) -> None:
    class Broken:
        def get_stats(self) -> dict[str, Any]:
            raise ConnectionError("redis down")

    broken = Broken()
    good = filled_cache("good")
    registry.register_cache("broken", broken)
    registry.register_cache("good", good)
    data = registry.collect()
    assert data["errors"] == {"broken": "ConnectionError: redis down"}
    families = parse_exposition(metrics.render_prometheus(data))
    assert families["scancache_metrics_source_errors"]["samples"] == [("", 1.0)]
    assert value_of(families, "scancache_cache_hits_total", '{cache="good"}') == 20


def test_registry_holds_sources_weakly(registry: metrics.MetricsRegistry) -> None:
    cache = filled_cache("gone")
    registry.register_cache("gone", cache)
    assert "gone" in registry.collect()["caches"]
    del cache
    gc.collect()
    assert registry.collect()["caches"] == {}
    with pytest.raises(TypeError):
        registry.register_cache("nothing", object())


async def test_loader_metrics(registry: metrics.MetricsRegistry) -> None:
    from scancache.lazyload.config import LazyLoadConfig
    from scancache.lazyload.loader import LazyModuleLoader

    async with LazyModuleLoader(LazyLoadConfig()) as loader:
        await loader.load_module("json")
        registry.register_loader("app", loader)
        data = registry.collect()
    assert data["loaders"]["app"]["loaded_count"] == 1
    families = parse_exposition(metrics.render_prometheus(data))
    assert value_of(families, "scancache_loader_modules", '{loader="app",status="loaded"}') == 1
    assert value_of(families, "scancache_loader_modules", '{loader="app",status="failed"}') == 0
    assert value_of(families, "scancache_loader_module_load_seconds",
                    '{loader="app",module="json"}') >= 0
    assert value_of(families, "scancache_loader_memory_bytes", '{loader="app"}') > 0


async def test_dns_cache_counters_after_real_lookups(registry: metrics.MetricsRegistry) -> None:
    from scancache.dns.cache import DNSCache
    from scancache.testing.dns_server import LoopbackDNSServer

    with LoopbackDNSServer({"a.test": "192.0.2.1"}) as server:
        async with DNSCache(CacheConfig(), nameservers=[server.address]) as dns:
            await dns.resolve("a.test")
            await dns.resolve("a.test")
            registry.register_cache("dns", dns)
            families = parse_exposition(metrics.render_prometheus(registry.collect()))
    assert value_of(families, "scancache_cache_hits_total", '{cache="dns"}') == 1
    assert value_of(families, "scancache_cache_upstream_queries_total", '{cache="dns"}') == \
        server.total_queries == 2  # A and AAAA, once


# ---------------------------------------------------------------------------------------- command
def test_metrics_command_prints_prometheus_text(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "scancache", "metrics"], capture_output=True,
                          text=True, env=cli_env(tmp_path), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    families = parse_exposition(done.stdout)
    assert value_of(families, "scancache_cache_info", '{cache="dns",backend="disk"}') == 1
    assert value_of(families, "scancache_cache_entries", '{cache="vulndb"}') == 0
    as_json = subprocess.run([sys.executable, "-m", "scancache", "metrics", "--format", "json"],
                             capture_output=True, text=True, env=cli_env(tmp_path), timeout=60,
                             check=True)
    assert set(json.loads(as_json.stdout)["caches"]) == {"dns", "vulndb"}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_metrics_serve_until_interrupted(tmp_path: Path) -> None:
    child = start_cli("metrics", "--serve", "0", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      env=cli_env(tmp_path))
    try:
        line = child.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/metrics", line)
        assert match, line
        with urllib.request.urlopen(match.group(0), timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            families = parse_exposition(response.read().decode())
        assert "scancache_cache_hits_total" in families
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(match.group(0).replace("/metrics", "/nope"), timeout=10)
        assert missing.value.code == 404
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) == 0
        assert "Traceback" not in child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


async def test_components_register_themselves_without_replacing_each_other():
    import gc

    from scancache import CacheConfig, DNSCache, LazyLoadConfig, LazyModuleLoader, VulnerabilityDBCache
    from scancache.metrics import REGISTRY, get_monitoring_data

    REGISTRY.clear()
    first, second = DNSCache(CacheConfig()), DNSCache(CacheConfig())
    vulndb = VulnerabilityDBCache(CacheConfig())
    loader = LazyModuleLoader(LazyLoadConfig())
    quiet = DNSCache(CacheConfig(enable_metrics=False))
    data = get_monitoring_data()
    assert set(data["caches"]) == {"dns", "dns#2", "vulndb"}
    assert set(data["loaders"]) == {"lazy"}
    assert (first.metrics_name, second.metrics_name) == ("dns", "dns#2")
    assert not hasattr(quiet, "metrics_name")
    await vulndb.aclose()
    for dns in (first, second, quiet):
        await dns.aclose()
    del first, second, quiet, vulndb, loader
    gc.collect()
    assert get_monitoring_data()["caches"] == {}  # held weakly: gone with their owners
