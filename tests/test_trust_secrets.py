"""No credential leaves the process in anything scancache prints or logs (issue 12.6): cache stats
(table and JSON), the errors of cache stats and cache clear, log lines, config reprs, metrics."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from scancache.cache.core import Cache
from scancache.cache.urls import redact_text, redact_url
from scancache.config import CacheConfig, CacheType, load_config
from scancache.testing.redis_server import RedisServer, find_redis_server

SECRET = "s3cr3t-Pw"
needs_redis = pytest.mark.skipif(find_redis_server() is None, reason="redis-server binary not found on PATH")


@pytest.mark.parametrize(("url", "shown"), [
    (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    (f"redis://alice:{SECRET}@h:1/0?cluster=true", "redis://alice:***@h:1/0?cluster=true"),
    (f"redis+cluster://alice:{SECRET}@h:1", "redis+cluster://alice:***@h:1"),
    (f"https://{SECRET}@osv.example/v1", "https://***@osv.example/v1"),  # a lone token
    (f"redis://h:1/0?password={SECRET}", "redis://h:1/0?password=***"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_redact_url_hides_every_form_of_credential(url, shown):
    assert redact_url(url) == shown


def test_redact_text_hides_urls_inside_messages():
    text = f"cannot reach redis://:{SECRET}@10.0.0.1:6379/0 (timeout), nor https://u:{SECRET}@x/"
    assert SECRET not in redact_text(text)
    assert "redis://:***@10.0.0.1:6379/0" in redact_text(text)


def test_config_reprs_hide_urls_credentials_and_keys(tmp_path, monkeypatch):
    from scancache.dns.config import DNSConfig
    from scancache.vulndb.config import VulnDBConfig

    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    configs = [
        CacheConfig(redis_url=f"redis://:{SECRET}@h:1/0", signing_key=SECRET * 2),
        DNSConfig(redis_url=f"redis://u:{SECRET}@h:1/0"),
        VulnDBConfig(osv_url=f"https://u:{SECRET}@osv.example", nvd_api_key=SECRET),
    ]
    path = tmp_path / "c.toml"
    path.write_text(f'[cache]\nredis_url = "redis://:{SECRET}@h:1/0"\n')
    for shown in [*map(repr, configs), repr(load_config(path))]:
        assert SECRET not in shown
        assert "***" in shown


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scancache", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


@needs_redis
def test_cache_stats_and_clear_never_print_the_redis_password(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    with RedisServer(extra_args=["--requirepass", SECRET]) as server:
        url = server.url
        assert SECRET in url
        common = ("--cache-type", "redis", "--redis-url", url)
        for args in (("cache", "stats"), ("cache", "stats", "--format", "json"), ("cache", "clear")):
            done = _cli(*common, *args, env=env)
            assert done.returncode == 0, (args, done.stderr)
            assert SECRET not in done.stdout + done.stderr, args
        stats = json.loads(_cli(*common, "cache", "stats", "--format", "json", env=env).stdout)
        assert stats["location"] == url.replace(SECRET, "***")
        server.stop()  # now every command fails: its error must not carry the password either
        for args in (("cache", "stats"), ("cache", "stats", "--format", "json"), ("cache", "clear"),
                     ("-v", "cache", "stats")):
            done = _cli(*common, *args, env=env)
            assert done.returncode != 0, (args, done.stdout)
            assert "error" in done.stderr and SECRET not in done.stdout + done.stderr, (args, done.stderr)


def test_the_cli_error_for_an_unreachable_osv_url_hides_its_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    requirements = tmp_path / "r.txt"
    requirements.write_text("jinja2==2.4\n")
    closed_port = "9"  # discard: nothing listens on loopback here
    done = _cli("audit", "-r", str(requirements), "--osv-url",
                f"http://user:{SECRET}@127.0.0.1:{closed_port}", env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert SECRET not in done.stdout + done.stderr


@needs_redis
def test_log_lines_and_metrics_of_a_failing_redis_cache_hide_the_password(caplog):
    from scancache.metrics import MetricsRegistry, render_prometheus

    with RedisServer(extra_args=["--requirepass", SECRET]) as server:
        cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url,
                                  redis_timeout_seconds=0.3))
        assert cache.set("k", "v")
        server.stop()
        with caplog.at_level(logging.DEBUG, logger="scancache"):
            assert cache.get("k") is None
            assert cache.set("k", "w") is False  # fails fast: RedisUnavailable names the server
        assert caplog.records and SECRET not in caplog.text
        registry = MetricsRegistry()
        registry.register_cache("redis", cache)
        data = registry.collect()
        assert SECRET not in json.dumps(data, default=str) + render_prometheus(data)
        assert SECRET not in repr(cache) + repr(cache.backend) + repr(cache.config)
        cache.close()
