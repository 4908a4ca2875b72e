"""The dashboard's REST API and event stream, over real HTTP (httpx) against a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from scancache import metrics
from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
from scancache.dashboard import AlertRules, DashboardServer, aserve_dashboard, serve_dashboard
from support import start_cli

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def demo_cache() -> Iterator[Cache]:
    cache = Cache(CacheConfig(namespace="demo"))
    for i in range(5):
        cache.set(f"host:{i}.test", [f"192.0.2.{i}"])
    cache.set("cve:CVE-2021-44228", {"id": "CVE-2021-44228", "raw": b"\x00\xff"})
    yield cache
    cache.close()


@pytest.fixture
def server(demo_cache: Cache) -> Iterator[DashboardServer]:
    registry = metrics.MetricsRegistry()
    registry.register_cache("demo", demo_cache)
    running = serve_dashboard(caches=[demo_cache], collect=lambda: metrics.get_monitoring_data(registry),
                              interval=0.2, alerts=AlertRules(error_rate_above=0.5))
    yield running
    running.stop()


@pytest.fixture
def client(server: DashboardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def test_stats_keys_entries_delete_and_clear(client: httpx.Client, demo_cache: Cache) -> None:
    stats = client.get("/api/stats").json()
    assert stats["caches"]["demo"]["size"] == 6
    assert client.get("/api/caches").json() == {"demo": {"backend": "memory"}}

    keys = client.get("/api/caches/demo/keys", params={"prefix": "host:", "limit": 3}).json()
    assert keys["keys"] == ["host:0.test", "host:1.test", "host:2.test"]

    entry = client.get("/api/caches/demo/entries/cve:CVE-2021-44228").json()
    assert entry["value"] == {"id": "CVE-2021-44228", "raw": {"base64": "AP8="}}
    assert entry["is_stale"] is False and entry["expires_at"] > 0
    assert client.get("/api/caches/demo/entries/absent").status_code == 404
    assert client.get("/api/caches/nope/keys").status_code == 404

    assert client.delete("/api/caches/demo/entries/host:0.test").json()["deleted"] is True
    assert demo_cache.get("host:0.test") is None
    assert client.delete("/api/caches/demo/entries/host:0.test").json()["deleted"] is False

    assert client.post("/api/caches/demo/clear").json() == {"namespace": "demo", "removed": 5}
    assert len(demo_cache) == 0


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_key_listing_limit_is_bounded(client: httpx.Client, limit: str) -> None:
    assert client.get("/api/caches/demo/keys", params={"limit": limit}).status_code == 400


def test_key_listing_on_every_backend(tmp_path: Path, redis_url: str) -> None:
    configs = [CacheConfig(cache_type=CacheType.MEMORY, namespace="m"),
               CacheConfig(cache_type=CacheType.DISK, cache_dir=tmp_path, namespace="d"),
               CacheConfig(cache_type=CacheType.REDIS, redis_url=redis_url, namespace="r"),
               CacheConfig(cache_type=CacheType.HYBRID, redis_url=redis_url, namespace="h")]
    for config in configs:
        with Cache(config) as cache:
            for key in ("a%1", "a_2", "a*3", "ab", "b"):
                cache.set(key, 1)
            other = Cache(CacheConfig(**{**config.__dict__, "namespace": config.namespace + "x"}))
            other.set("a-other", 1)  # another namespace in the same store is never listed
            # glob and LIKE characters in the prefix match themselves only
            assert cache.backend.keys("a", 10) == ["a%1", "a*3", "a_2", "ab"], config.cache_type
            assert cache.backend.keys("a*", 10) == ["a*3"]
            assert cache.backend.keys("a_", 10) == ["a_2"]
            assert len(cache.backend.keys("", 2)) == 2
            other.close()


def test_event_stream_sends_a_frame_a_sample_with_rates(server: DashboardServer, demo_cache: Cache) -> None:
    frames: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.url, timeout=10) as http, \
            http.stream("GET", "/api/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            frames.append(json.loads(line[6:]))
            if len(frames) == 1:
                for _ in range(50):
                    demo_cache.get("host:1.test")
            if len(frames) >= 2 and frames[-1]["caches"]["demo"]["hits"] >= 50:
                break
            assert len(frames) < 50, "hits never showed up in the stream"
    last = frames[-1]["caches"]["demo"]
    assert last["rate"]["hits"] > 0 and last["window_hit_rate"] == 1.0
    assert frames[-1]["time"] > frames[0]["time"]


def test_history_and_metrics_with_alert_gauge(client: httpx.Client, demo_cache: Cache) -> None:
    demo_cache.get("host:1.test")
    history = client.get("/api/history").json()
    assert isinstance(history, list)
    text = client.get("/metrics").text
    assert 'scancache_alert_firing{alert="error_rate_high",cache="demo"} 0' in text
    assert "scancache_cache_hits_total" in text
    schema = client.get("/openapi.json").json()
    assert "/api/caches/{namespace}/keys" in schema["paths"]


def test_stats_and_frames_carry_each_resolver_of_a_dns_pool() -> None:
    from scancache.dns.cache import DNSCache
    from scancache.dns.pool import ResolverPool
    from scancache.testing.dns_server import LoopbackDNSServer

    names = {f"host{i}.pool.test": f"192.0.2.{i}" for i in range(1, 21)}
    with LoopbackDNSServer(names) as honest, LoopbackDNSServer(names) as refuser:
        refuser.refuse()
        pool = ResolverPool([honest.address, refuser.address], timeout_seconds=2.0, attempts=3,
                            rng=random.Random(18))  # seeded: the refuser is asked, the honest one answers
        dns = DNSCache(CacheConfig(cache_type=CacheType.MEMORY), upstream=pool)

        async def scan() -> None:
            for name in names:
                assert await dns.resolve(name) == [names[name]]

        asyncio.run(scan())
        registry = metrics.MetricsRegistry()
        registry.register_cache("dns", dns)
        running = serve_dashboard(caches=[dns], collect=lambda: metrics.get_monitoring_data(registry),
                                  interval=0.2)
        try:
            with httpx.Client(base_url=running.url, timeout=10) as http:
                resolvers = http.get("/api/stats").json()["caches"]["dns"]["resolvers"]
                frames = http.get("/api/history").json()
        finally:
            running.stop()
            dns.close()
    assert set(resolvers) == {honest.address, refuser.address}
    good, bad = resolvers[honest.address], resolvers[refuser.address]
    assert good["answered"] >= len(names) and good["errors"] == good["timeouts"] == 0
    assert good["mean_latency_ms"] > 0 and good["weight"] > bad["weight"]
    assert bad["sent"] >= 1 and bad["answered"] == 0 and bad["errors"] == bad["sent"]
    assert set(frames[-1]["caches"]["dns"]["resolvers"]) == set(resolvers)  # what the page draws


# ------------------------------------------------------------------------------------ security
def test_foreign_host_is_refused_even_for_reads(client: httpx.Client) -> None:
    """DNS rebinding: a page on evil.test re-pointed at 127.0.0.1 still sends Host: evil.test."""
    assert client.get("/api/stats", headers={"Host": "evil.test"}).status_code == 403
    assert client.get("/", headers={"Host": "evil.test:8050"}).status_code == 403
    assert client.get("/api/stats", headers={"Host": "localhost:1"}).status_code == 200


def test_cross_origin_writes_are_refused(client: httpx.Client, demo_cache: Cache) -> None:
    assert client.post("/api/caches/demo/clear", headers={"Origin": "http://evil.test"}).status_code == 403
    assert client.delete("/api/caches/demo/entries/host:1.test",
                         headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert len(demo_cache) == 6
    own = client.base_url.netloc.decode()
    assert client.post("/api/caches/demo/clear", headers={"Origin": f"http://{own}"}).status_code == 200


def test_other_methods_are_refused(client: httpx.Client) -> None:
    assert client.put("/api/caches/demo/entries/x", content=b"1").status_code == 405


def test_token_is_required_on_every_request(demo_cache: Cache) -> None:
    server = serve_dashboard(caches=[demo_cache], token=TOKEN, interval=0.2)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/").status_code == 401
            assert http.get("/api/stats", headers={"Authorization": "Bearer wrong-token-wrong-token"}
                            ).status_code == 401
            assert http.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            assert http.get("/", params={"token": TOKEN}).status_code == 200
            # Writes take the token from the header only (a URL is easy to leak and to forge).
            assert http.post("/api/caches/demo/clear", params={"token": TOKEN}).status_code == 401
            assert len(demo_cache) == 6
            assert http.post("/api/caches/demo/clear",
                             headers={"Authorization": f"Bearer {TOKEN}"}).json()["removed"] == 6
    finally:
        server.stop()


def test_binding_beyond_loopback_needs_a_long_token() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        DashboardServer(host="0.0.0.0", port=0)
    with pytest.raises(ValueError, match="at least 16"):
        DashboardServer(host="127.0.0.1", port=0, token="short")


async def test_embedded_in_the_callers_event_loop(demo_cache: Cache) -> None:
    """aserve_dashboard serves from the running loop, which keeps running the scanner meanwhile."""
    server = await aserve_dashboard(caches=[demo_cache], interval=0.2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            ticks = 0

            async def scanner() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(scanner())
            response = await http.get("/api/caches/demo/keys", params={"prefix": "cve:"})
            task.cancel()
            assert response.json()["keys"] == ["cve:CVE-2021-44228"]
    finally:
        await server.astop()
    assert server._server.started and server._server.should_exit


def test_import_scancache_and_cli_startup_do_not_load_the_dashboard() -> None:
    code = ("import sys, scancache; from scancache.cli.main import build_parser; build_parser(); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio') "
            "or m.startswith('scancache.dashboard')]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    import os
    import re
    import signal

    env = {**os.environ, "SCANCACHE_CACHE_DIR": str(tmp_path)}
    process = start_cli("dashboard", "--port", "0", stderr=subprocess.PIPE, env=env)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"dashboard on (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        with httpx.Client(base_url=match.group(1), timeout=10) as http:
            assert set(http.get("/api/caches").json()) == {"dns", "vulndb"}
            assert http.get("/api/caches/dns/keys").json()["keys"] == []
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "SCANCACHE_CACHE_DIR": str(tmp_path)}
    env.pop("SCANCACHE_DASHBOARD_TOKEN", None)
    command = [sys.executable, "-m", "scancache", "dashboard", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "needs a token" in done.stderr and done.stderr.count("\n") == 1


def test_latency_figures_are_reads_only() -> None:
    from scancache.dashboard.sampler import _latency

    write_only = {"latency": {"set": {"p50_us": 9.0, "p90_us": 10.0, "p99_us": 11.0}}}
    assert _latency(write_only) == {}
    both = {"latency": {"set": {"p50_us": 9.0}, "get_many": {"p50_us": 2.0, "p90_us": 3.0, "p99_us": 4.0}}}
    assert _latency(both) == {"p50": 2.0, "p90": 3.0, "p99": 4.0}
