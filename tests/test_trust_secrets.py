"""No credential leaves the process in anything scancache prints or logs (issue 12.6): cache stats
(table and JSON), the errors of cache stats and cache clear, log lines, config reprs, metrics."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest

from scancache.cache.core import Cache
from scancache.cache.urls import redact_text, redact_url
from scancache.config import CacheConfig, CacheType, load_config
from scancache.testing.redis_server import RedisServer, find_redis_server
from support import run_cli

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


@needs_redis
def test_cache_stats_and_clear_never_print_the_redis_password(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    with RedisServer(extra_args=["--requirepass", SECRET]) as server:
        url = server.url
        assert SECRET in url
        common = ("--cache-type", "redis", "--redis-url", url)
        for args in (("cache", "stats"), ("cache", "stats", "--format", "json"), ("cache", "clear")):
            done = run_cli(*common, *args, env=env)
            assert done.returncode == 0, (args, done.stderr)
            assert SECRET not in done.stdout + done.stderr, args
        stats = json.loads(run_cli(*common, "cache", "stats", "--format", "json", env=env).stdout)
        assert stats["location"] == url.replace(SECRET, "***")
        server.stop()  # now every command fails: its error must not carry the password either
        for args in (("cache", "stats"), ("cache", "stats", "--format", "json"), ("cache", "clear"),
                     ("-v", "cache", "stats")):
            done = run_cli(*common, *args, env=env)
            assert done.returncode != 0, (args, done.stdout)
            assert "error" in done.stderr and SECRET not in done.stdout + done.stderr, (args, done.stderr)


def test_the_cli_error_for_an_unreachable_osv_url_hides_its_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    requirements = tmp_path / "r.txt"
    requirements.write_text("jinja2==2.4\n")
    closed_port = "9"  # discard: nothing listens on loopback here
    done = run_cli("audit", "-r", str(requirements), "--osv-url",
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


def test_a_backend_errors_log_line_hides_the_url_credentials_in_its_message(caplog):
    from scancache.cache.memory import MemoryBackend

    class Failing(MemoryBackend):
        def get(self, key):
            raise ConnectionError(f"cannot reach redis://:{SECRET}@10.0.0.1:6379/0: refused")

    cache = Cache(backend=Failing(10, 10_000))
    with caplog.at_level(logging.WARNING, logger="scancache"):
        assert cache.get("k") is None  # a failing read is a counted miss, logged once
    assert "redis://:***@10.0.0.1:6379/0: refused" in caplog.text and SECRET not in caplog.text
    assert cache.get_stats()["errors"] == 1


# ---------------------------------------------------------------------- OSV URLs: -v, joins, schemes
def _no_retry_env(tmp_path) -> dict[str, str]:
    """This environment without SCANCACHE_*, a private cache and one attempt per request (no backoff)."""
    config = tmp_path / "once.toml"
    config.write_text("[vulndb]\nmax_retries = 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    env["SCANCACHE_CONFIG"] = str(config)
    return env


def test_the_verbose_traceback_of_an_osv_failure_hides_the_url_credentials(tmp_path):
    requirements = tmp_path / "r.txt"
    requirements.write_text("jinja2==2.4\n")
    with socket.socket() as sock:  # a loopback port nobody listens on: refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:{SECRET}@127.0.0.1:{port}/?token={SECRET}x"
    done = run_cli("-v", "audit", "--cache-type", "memory", "--osv-url", url, str(requirements),
                env=_no_retry_env(tmp_path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" in done.stderr and "VulnDBError" in done.stderr  # -v still shows it
    assert SECRET not in done.stdout + done.stderr, done.stderr
    # The API path goes before the base URL's query, not into it; the error keeps its "url: why".
    assert f"http://user:***@127.0.0.1:{port}/v1/querybatch?token=***: connection failed" in done.stderr


def test_an_osv_base_url_with_a_query_is_asked_at_the_api_paths(tmp_path):
    from scancache.testing.osv_server import OSVTestServer

    sample = Path(__file__).resolve().parents[1] / "src/scancache/testing/data/osv-pypi-sample.zip"
    requirements = tmp_path / "r.txt"
    requirements.write_text("jinja2==2.4\n")
    with OSVTestServer.from_zip(sample) as server:
        done = run_cli("audit", "--cache-type", "memory", "--osv-url", f"{server.url}/?token={SECRET}",
                    "--format", "json", str(requirements), env=_no_retry_env(tmp_path))
        asked = dict(server.requests)
    assert done.returncode == 1, (done.stdout, done.stderr)  # jinja2 2.4 is vulnerable
    assert asked.get("/v1/querybatch", 0) >= 1, asked
    assert {"PYSEC-2014-8", "PYSEC-2014-82"} <= {v["id"] for v in json.loads(done.stdout)["vulnerabilities"]}


def test_osv_url_schemes_are_case_insensitive_and_fragments_refused():
    from scancache.vulndb.config import VulnDBConfig

    assert VulnDBConfig(osv_url="HTTP://127.0.0.1:1/").osv_url == "http://127.0.0.1:1"
    assert VulnDBConfig(osv_url="hTTpS://h/x/?token=T").osv_url == "https://h/x/?token=T"
    for bad in ("ftp://h", "http://", "http://h/#frag", f"file://u:{SECRET}@h/x"):
        with pytest.raises(ValueError, match="osv_url") as caught:
            VulnDBConfig(osv_url=bad)
        assert SECRET not in str(caught.value)


def test_redact_text_keeps_what_follows_a_url():
    text = f"POST http://h/v1/query?token={SECRET}: refused, see https://u:{SECRET}@h/x."
    assert redact_text(text) == "POST http://h/v1/query?token=***: refused, see https://u:***@h/x."


def test_vulndb_errors_name_the_endpoint_without_credentials():
    import asyncio

    from scancache.errors import VulnDBError
    from scancache.vulndb.http import JSONClient
    from scancache.vulndb.transport import Transport, TransportFailure

    class Refusing(Transport):
        async def send(self, method, url, **kwargs):  # a client library quoting the URL whole
            raise TransportFailure("connection", f"error sending request for url ({url})")

    client = JSONClient(Refusing(), max_retries=0, backoff_base_seconds=0, backoff_max_seconds=0)
    url = f"https://u:{SECRET}@osv.example/v1/query?api_key={SECRET}"
    with pytest.raises(VulnDBError) as caught:
        asyncio.run(client.request("osv_query", "POST", url))
    assert SECRET not in str(caught.value) + caught.value.endpoint
    assert caught.value.endpoint == "POST https://u:***@osv.example/v1/query?api_key=***"


def test_the_verbose_traceback_hides_the_osv_urls_credentials_too(tmp_path):
    """Attack note 4: -v printed the raw exception, whose text held the unredacted URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    requirements = tmp_path / "r.txt"
    requirements.write_text("jinja2==2.4\n")
    done = run_cli("-v", "audit", "-r", str(requirements), "--cache-type", "memory", "--osv-url",
                f"http://user:{SECRET}@127.0.0.1:9", env=env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" in done.stderr  # -v still shows where it failed
    assert SECRET not in done.stdout + done.stderr
