"""The fleet view over a real redis-server: two worker processes publish snapshots; the dashboard,
scancache.fleet and `scancache cache stats` see both, sum them, and drop a worker that stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scancache import fleet

pytestmark = pytest.mark.redis

SIGNING_KEY = "fleet-signing-key-0123456789"
WORKER = """
import sys
from scancache import Cache, CacheConfig, CacheType, fleet
url, hits, key = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=url, namespace="dns", signing_key=key))
cache.set("k", 1)
for _ in range(hits):
    assert cache.get("k") == 1
cache.get("absent")
assert fleet.publish_now() == 1
print("ready", flush=True)
sys.stdin.readline()
"""


def _wait_for(what: Callable[[], Any], timeout: float = 20.0) -> Any:
    """what()'s first truthy answer, polled every 0.1 s until timeout (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = what()
        if answer:
            return answer
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


@pytest.fixture
def start_worker(redis_url: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "SCANCACHE_FLEET_INTERVAL": "0.5"}

    def start(hits: int, key: str = "") -> subprocess.Popen[str]:
        worker = subprocess.Popen([sys.executable, "-c", WORKER, redis_url, str(hits), key],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        started.append(worker)
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.kill()
        worker.wait()


def test_two_workers_are_seen_as_one_fleet(redis_url: str, start_worker: Callable[..., Any],
                                           tmp_path: Path) -> None:
    first, second = start_worker(3), start_worker(5)
    workers = fleet.read_workers(redis_url, ["dns"])
    assert sorted(w["pid"] for w in workers) == sorted([first.pid, second.pid])
    total = fleet.aggregate(workers)["dns"]
    assert (total["hits"], total["misses"], total["sets"], total["workers"]) == (8, 2, 2, 2)
    assert total["hit_rate"] == pytest.approx(0.8)

    env = {**os.environ, "SCANCACHE_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "scancache", "cache", "stats", "--cache-type", "redis",
                           "--redis-url", redis_url, "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=60, check=True)
    stats = json.loads(done.stdout)
    assert len(stats["fleet"]["workers"]) == 2 and stats["fleet"]["caches"]["dns"]["hits"] == 8
    table = subprocess.run([sys.executable, "-m", "scancache", "cache", "stats", "--cache-type", "redis",
                            "--redis-url", redis_url], capture_output=True, text=True, env=env, timeout=60,
                           check=True).stdout
    assert "fleet: 2 live workers" in table and f":{first.pid}" in table

    assert first.stdin is not None
    first.stdin.close()  # the worker ends; its key expires a few seconds later
    assert first.wait(30) == 0
    def one_left() -> list[dict[str, Any]] | None:
        workers = fleet.read_workers(redis_url, ["dns"])
        return workers if len(workers) == 1 else None

    remaining = _wait_for(one_left)
    assert remaining[0]["pid"] == second.pid


def test_the_dashboard_lists_and_sums_the_workers(redis_url: str, start_worker: Callable[..., Any]) -> None:
    pytest.importorskip("starlette")
    import httpx

    from scancache import metrics
    from scancache.dashboard import serve_dashboard

    start_worker(2)
    start_worker(4)
    empty = metrics.MetricsRegistry()
    server = serve_dashboard(caches=[], redis_url=redis_url, fleet_namespaces=["dns"], interval=0.2,
                             collect=lambda: metrics.get_monitoring_data(empty))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            def two_workers() -> dict[str, Any] | None:
                data = http.get("/api/stats").json()
                return data if len(data["fleet"]["workers"]) == 2 else None

            data = _wait_for(two_workers)
            assert data["fleet"]["caches"]["dns"]["hits"] == 6
            assert "scancache_fleet_workers 2" in http.get("/metrics").text
            frame = http.get("/api/history").json()[-1]
            assert frame["fleet"]["dns"]["workers"] == 2 and len(frame["workers"]) == 2
    finally:
        server.stop()


def test_forged_snapshots_are_dropped_when_a_signing_key_is_set(redis_url: str,
                                                                start_worker: Callable[..., Any]) -> None:
    import redis

    worker = start_worker(1, SIGNING_KEY)
    client = redis.Redis.from_url(redis_url)
    forged = {"worker": "evil:1", "namespace": "dns", "time": time.time(),
              "caches": {"dns": {"hits": 10**9, "misses": 0, "errors": 0}}}
    client.set("scancache-fleet:dns:evil:1", json.dumps({"snapshot": json.dumps(forged), "sig": "00"}))
    client.set("scancache-fleet:dns:junk", b"\x80not json")
    signed = fleet.read_workers(redis_url, ["dns"], signing_key=SIGNING_KEY)
    assert [w["pid"] for w in signed] == [worker.pid]
    unsigned_view = fleet.read_workers(redis_url, ["dns"])  # without a key: no proof either way
    assert {w["worker"] for w in unsigned_view} == {"evil:1", signed[0]["worker"]}
    client.close()
