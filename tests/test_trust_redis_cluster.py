"""Every component on a Redis Cluster (issue 12.7): one cluster-aware connection factory, so the
NVD rate limiter, audit and cache warm -r work on `redis+cluster://` and `?cluster=true` URLs, and
the limit stays shared instead of silently falling back to a per-process one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")

from redis.crc import key_slot

from scancache.testing.osv_server import OSVTestServer
from scancache.testing.redis_cluster import RedisClusterServer
from scancache.testing.redis_server import find_redis_server
from scancache.vulndb.ratelimit import RedisWindowLimiter
from support import run_cli

pytestmark = [pytest.mark.redis,
              pytest.mark.skipif(find_redis_server() is None, reason="redis-server binary not found on PATH")]

SAMPLE = Path(__file__).resolve().parents[1] / "src/scancache/testing/data/osv-pypi-sample.zip"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServer]:
    try:
        server = RedisClusterServer(3).start()
    except Exception as exc:  # e.g. no free port pairs on this machine
        pytest.skip(f"cannot form a local Redis Cluster: {exc}")
    try:
        yield server
    finally:
        server.close()


def _url_forms(cluster: RedisClusterServer) -> list[str]:
    first = cluster.servers[0]
    return [cluster.url, f"redis://{first.host}:{first.port}/0?cluster=true"]


def _key_off_the_first_node(prefix: str) -> str:
    """A limiter key whose window-0 counter lives on a node other than the one the URL names."""
    first_node_slots = range(0, 16384 // 3)
    for n in range(1000):
        key = f"{prefix}{n}"
        if key_slot(f"{key}:0".encode()) not in first_node_slots:
            return key
    raise AssertionError("no key found")  # pragma: no cover


@pytest.mark.parametrize("form", [0, 1], ids=["redis+cluster", "cluster=true"])
async def test_nvd_rate_limit_is_shared_through_the_cluster(cluster, form):
    url = _url_forms(cluster)[form]
    key = _key_off_the_first_node(f"scancache:test:nvd-rate-{form}-")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise _Waited  # the third request had to wait: that is all this test needs to see

    # A generous timeout: this test is about the shared counter, and on a loaded machine the cluster's
    # first slot-map fetch can take longer than the production 1 s (a timeout counts as an error).
    workers = [RedisWindowLimiter(url, key, 2, 30.0, clock=lambda: 0.0, sleep=sleep, timeout_seconds=10.0)
               for _ in range(2)]
    try:
        await workers[0].acquire()
        await workers[1].acquire()  # another process's limiter: same counter
        with pytest.raises(_Waited):
            await workers[0].acquire()
            pytest.fail(f"the third request went through; limiter errors: {[w.errors for w in workers]}")
        assert slept == [30.0]
        assert [w.errors for w in workers] == [0, 0]  # never fell back to a per-process limit
    finally:
        for worker in workers:
            await worker.aclose()


class _Waited(Exception):
    pass


@pytest.mark.parametrize(("cache_type", "form"), [("redis", 0), ("hybrid", 1)],
                         ids=["redis+cluster", "hybrid-cluster=true"])
def test_audit_and_cache_warm_run_on_a_cluster_cache(cluster, tmp_path, cache_type, form):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.4\nrequests==2.0.0\n")
    with OSVTestServer.from_zip(SAMPLE) as osv:
        common = ("--cache-type", cache_type, "--redis-url", _url_forms(cluster)[form])
        assert run_cli(*common, "cache", "clear", env=env).returncode == 0
        warm = run_cli(*common, "cache", "warm", "-r", str(requirements), "--osv-url", osv.url, env=env)
        assert warm.returncode == 0, warm.stderr
        assert json.loads(warm.stdout)["vulndb"]["vulnerable_packages"] == 2
        asked = osv.total_requests
        audit = run_cli(*common, "audit", "-r", str(requirements), "--osv-url", osv.url, env=env)
        assert audit.returncode == 1, audit.stderr  # findings, not an error
        assert "jinja2" in audit.stdout
        assert osv.total_requests == asked  # answered from the cluster cache the warm filled
