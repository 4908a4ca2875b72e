"""Faults that the component tests do not stage: upstreams that change how they fail, outages under load.

- DNS: one upstream that turns to SERVFAIL, then timeouts, then truncated answers, then heals;
  stale answers are served throughout, queries stay bounded, a fresh answer returns. A hundred stale
  names against a failing upstream send one lookup each, not one per caller.
- Redis: stopped and restarted, or hung (SIGSTOP), while threads and tasks keep reading and writing;
  callers see misses and False, never exceptions, and never wait past the configured timeout.
- DNS on a Redis backend whose server dies: lookups keep answering from upstream.
- OSV/NVD: dropped connections and truncated or malformed JSON that never end; the client gives up
  naming the endpoint and caches nothing; concurrent callers of one failing query share one retry
  sequence; the seed's CVE (answered by NVD) is served stale when NVD fails after expiry.

Expiry moves injected clocks; the few waits are for other threads and servers to change state.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import pytest

from scancache.cache.core import Cache
from scancache.config import CacheConfig, CacheType
from scancache.dns.cache import REFRESH_BACKOFF_SECONDS, DNSCache
from scancache.dns.config import DNSConfig
from scancache.errors import DNSError, VulnDBError
from scancache.testing.dns_server import LoopbackDNSServer
from scancache.testing.redis_server import RedisServer

JINJA = {"product": "jinja2", "version": "2.4", "ecosystem": "PyPI"}
LOG4J = {"cve_id": "CVE-2021-44228", "product": "log4j"}
NVD_PATH = "/rest/json/cves/2.0"
REDIS_TIMEOUT = 0.3  # seconds; every Redis call must return well within WORST_CALL
WORST_CALL = 1.0


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until another thread or process has changed state (not an expiry); fail if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "state never reached"
        time.sleep(0.005)


# ---------------------------------------------------------------------- DNS


async def test_dns_upstream_servfail_then_timeouts_then_truncation_then_heals(make_dns, dns_server,
                                                                              dns_clock):
    dns_server.set_records("flaky.test", "A", ["192.0.2.60"], ttl=60)
    dns = make_dns()  # attempts=2: one lookup sends at most 2 queries
    assert await dns.resolve("flaky.test", "A") == ["192.0.2.60"]
    assert dns_server.query_count("flaky.test") == 1

    # SERVFAIL: one foreground lookup when the answer goes stale, then stale at once for everyone.
    dns_server.servfail("flaky.test")
    dns_clock.advance(61)
    for _ in range(100):
        assert await dns.resolve("flaky.test", "A") == ["192.0.2.60"]
    await dns.wait_background()
    after_servfail = dns_server.query_count("flaky.test")
    assert 2 <= after_servfail <= 1 + 2  # the first lookup plus one failed one; no storm

    # Timeouts: stale answers come back without waiting for them; one background refresh per backoff.
    dns_server.heal()
    dns_server.drop("flaky.test")
    dns_clock.advance(REFRESH_BACKOFF_SECONDS + 1)
    started = time.monotonic()
    results = await asyncio.gather(*[dns.resolve("flaky.test", "A") for _ in range(100)])
    assert time.monotonic() - started < 0.2  # nobody waited for the 0.2 s x 2 timeouts
    assert results == [["192.0.2.60"]] * 100
    await dns.wait_background()
    after_drop = dns_server.query_count("flaky.test")
    assert 1 <= after_drop - after_servfail <= 2
    assert dns.get_stats()["refresh_failures"] == 1

    # Truncated answers (TC over UDP): not an empty answer to cache; the refresh retries over TCP.
    dns_server.heal()
    dns_server.truncate("flaky.test")
    dns_server.set_records("flaky.test", "A", ["192.0.2.61"], ttl=60)
    dns_clock.advance(REFRESH_BACKOFF_SECONDS + 1)
    assert await dns.resolve("flaky.test", "A") == ["192.0.2.60"]  # stale while the refresh runs
    await dns.wait_background()
    assert await dns.resolve("flaky.test", "A") == ["192.0.2.61"]  # the TCP answer, now fresh
    assert dns_server.query_count("flaky.test") - after_drop == 2  # UDP (truncated) then TCP

    # Healed: a fresh answer, cached for its TTL, no queries in between.
    dns_server.heal()
    dns_server.set_records("flaky.test", "A", ["192.0.2.62"], ttl=60)
    dns_clock.advance(61)
    assert await dns.resolve("flaky.test", "A") in (["192.0.2.61"], ["192.0.2.62"])
    await dns.wait_background()
    assert await dns.resolve("flaky.test", "A") == ["192.0.2.62"]
    settled = dns_server.query_count("flaky.test")
    for _ in range(50):
        assert await dns.resolve("flaky.test", "A") == ["192.0.2.62"]
    assert dns_server.query_count("flaky.test") == settled
    stats = dns.get_stats()
    assert stats["stale_served"] >= 200 and stats["servfails"] >= 1 and stats["timeouts"] >= 1


async def test_dns_many_stale_names_against_a_failing_upstream_send_one_lookup_each(make_dns, dns_server,
                                                                                   dns_clock):
    names = [f"host{i}.fleet.test" for i in range(100)]
    for i, name in enumerate(names):
        dns_server.set_records(name, "A", [f"198.51.100.{i}"], ttl=60)
    dns = make_dns(attempts=2)
    await asyncio.gather(*[dns.resolve(n, "A") for n in names])
    dns_server.reset_counts()
    dns_server.servfail()
    dns_clock.advance(61)
    for _ in range(5):  # five rounds of every name, each round 100 concurrent callers
        results = await asyncio.gather(*[dns.resolve(n, "A") for n in names])
        assert results == [[f"198.51.100.{i}"] for i in range(len(names))]
    await dns.wait_background()
    assert len(names) <= dns_server.total_queries <= 2 * len(names)  # attempts=2 per name, once
    dns_server.heal()
    dns_clock.advance(REFRESH_BACKOFF_SECONDS + 1)
    await asyncio.gather(*[dns.resolve(n, "A") for n in names])  # stale, refreshing behind
    await dns.wait_background()
    dns_server.reset_counts()
    assert await dns.resolve(names[0], "A") == ["198.51.100.0"]
    assert dns_server.total_queries == 0  # refreshed: fresh again


async def test_dns_stale_window_ends_with_a_dns_error_naming_the_host(make_dns, dns_server, dns_clock):
    dns_server.set_records("brief.test", "A", ["192.0.2.70"], ttl=60)
    dns = make_dns(stale_ttl_seconds=120)
    await dns.resolve("brief.test", "A")
    dns_server.drop("brief.test")
    dns_clock.advance(60 + 119)  # expired 119 s ago; the window ends at 60 + 120
    assert await dns.resolve("brief.test", "A") == ["192.0.2.70"]  # last second of the window
    dns_clock.advance(2)
    with pytest.raises(DNSError) as info:
        await dns.resolve("brief.test", "A")
    assert info.value.name == "brief.test" and info.value.reason == "timeout"


class SlowTCPNameserver:
    """A nameserver whose UDP answers are all truncated and whose TCP answers take `tcp_delay` seconds.

    Counts UDP queries and TCP connections, so a test can see whether a truncated answer led to
    exactly one TCP query. Answers come from a (never started) LoopbackDNSServer's answer().
    """

    def __init__(self, records: LoopbackDNSServer, tcp_delay: float) -> None:
        self.records, self.tcp_delay = records, tcp_delay
        for _ in range(100):  # a free UDP port whose TCP twin may be taken (TIME_WAIT): try another
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.tcp.bind(("127.0.0.1", self.udp.getsockname()[1]))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        else:
            raise OSError("no port free for both UDP and TCP on 127.0.0.1")
        self.udp.settimeout(0.05)
        self.tcp.listen(16)
        self.tcp.settimeout(0.05)
        self.address = f"127.0.0.1:{self.udp.getsockname()[1]}"
        self.udp_queries = self.tcp_connections = 0
        self.stopping = False
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]

    def __enter__(self) -> SlowTCPNameserver:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        for thread in self.threads:
            thread.join(5)
        self.udp.close()
        self.tcp.close()

    def _serve_udp(self) -> None:
        while not self.stopping:
            try:
                query, peer = self.udp.recvfrom(512)
            except OSError:
                continue
            self.udp_queries += 1
            answer = self.records.answer(query)
            if answer is not None:
                self.udp.sendto(answer, peer)

    def _serve_tcp(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            self.tcp_connections += 1
            threading.Thread(target=self._answer_tcp, args=(conn,), daemon=True).start()

    def _answer_tcp(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                size = int.from_bytes(conn.recv(2), "big")
                query = conn.recv(size)
                time.sleep(self.tcp_delay)  # a slow TCP path (busy server, long RTT), not an expiry
                answer = self.records.answer(query, tcp=True)
                if answer is not None:
                    conn.sendall(len(answer).to_bytes(2, "big") + answer)
            except OSError:
                pass


async def test_dns_truncated_answer_leads_to_one_tcp_query_even_when_tcp_is_slow():
    records = LoopbackDNSServer({"big.test": "192.0.2.80"})
    records.truncate()
    with SlowTCPNameserver(records, tcp_delay=0.4) as server:
        # timeout 1 s over 3 attempts: UDP waits of 0.14, 0.29 and 0.57 s; TCP answers after 0.4 s.
        dns = DNSCache(DNSConfig(timeout_seconds=1.0, attempts=3), nameservers=[server.address])
        try:
            assert await dns.resolve("big.test", "A") == ["192.0.2.80"]
        finally:
            await dns.aclose()
        assert (server.udp_queries, server.tcp_connections) == (1, 1)


# ---------------------------------------------------------------------- Redis under load
class LoadLoop:
    """Threads that set then get their own keys until stopped, recording what happened.

    acked: (key, value, call started at) for each set that returned True; errors: any exception a
    caller saw; slowest: the longest single call in seconds.
    """

    def __init__(self, cache: Cache, threads: int = 4) -> None:
        self.cache = cache
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: list[tuple[str, int, float]] = []
        self.errors: list[str] = []
        self.ops = 0
        self.misses = 0
        self.refused = 0
        self.slowest = 0.0
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def _run(self, thread: int) -> None:
        i = 0
        while not self.stop.is_set():
            key, started = f"t{thread}-{i}", time.monotonic()
            try:
                ok = self.cache.set(key, i)
                mid = time.monotonic()
                got = self.cache.get(key)
                done = time.monotonic()
            except BaseException as exc:  # the property under test: this never happens
                with self.lock:
                    self.errors.append(repr(exc))
                return
            with self.lock:
                self.ops += 2
                self.slowest = max(self.slowest, mid - started, done - mid)
                if ok:
                    self.acked.append((key, i, started))
                else:
                    self.refused += 1
                if got is None:
                    self.misses += 1
            i += 1

    def __enter__(self) -> LoadLoop:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def count(self) -> int:
        with self.lock:
            return self.ops


@pytest.mark.redis
def test_redis_stopped_and_restarted_mid_run_gives_misses_then_recovers_within_a_second(fresh_redis_server):
    server: RedisServer = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url,
                              redis_timeout_seconds=REDIS_TIMEOUT))
    try:
        with LoadLoop(cache) as load:
            wait_for(lambda: load.count() >= 400)
            server.stop()
            ops_at_stop = load.count()
            wait_for(lambda: load.count() >= ops_at_stop + 200)  # the callers carry on during the outage
            assert load.refused > 0 and load.misses > 0
            server.start()
            restarted = time.monotonic()
            wait_for(lambda: any(started > restarted for _, _, started in load.acked[-50:]), timeout=2.0)
            recovered_in = max(started for _, _, started in load.acked) - restarted
            ops_at_restart = load.count()
            wait_for(lambda: load.count() >= ops_at_restart + 400)
        assert load.errors == []
        assert recovered_in < 1.0, f"Redis used again only {recovered_in:.2f} s after its return"
        assert load.slowest < WORST_CALL
        after = [(k, v) for k, v, started in load.acked if started > restarted]
        assert len(after) > 100
        found = cache.get_many([k for k, _ in after])
        assert [found.get(k) for k, _ in after] == [v for _, v in after]  # nothing acknowledged lost
        assert cache.get_stats()["errors"] > 0
    finally:
        cache.close()


@pytest.mark.redis
def test_redis_hung_mid_run_every_call_returns_within_the_timeout(fresh_redis_server):
    server: RedisServer = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url,
                              redis_timeout_seconds=REDIS_TIMEOUT))
    try:
        with LoadLoop(cache) as load:
            wait_for(lambda: load.count() >= 400)
            server.pause()
            try:
                paused_ops = load.count()
                # Enough calls that each thread met the hung server more than once (breaker cool-downs).
                wait_for(lambda: load.count() >= paused_ops + 100)
                assert load.refused > 0
            finally:
                server.resume()
            resumed = time.monotonic()
            wait_for(lambda: any(started > resumed for _, _, started in load.acked[-50:]), timeout=2.0)
        assert load.errors == []
        assert load.slowest < WORST_CALL, f"a call took {load.slowest:.2f} s against a hung Redis"
        assert max(started for _, _, started in load.acked) - resumed < 1.0
    finally:
        cache.close()


@pytest.mark.redis
async def test_redis_outage_under_concurrent_tasks_never_raises(fresh_redis_server):
    server: RedisServer = fresh_redis_server
    cache = Cache(CacheConfig(cache_type=CacheType.REDIS, redis_url=server.url,
                              redis_timeout_seconds=REDIS_TIMEOUT))
    slowest = 0.0
    outcomes: list[tuple[float, bool]] = []  # (call started at, set acknowledged)
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        nonlocal slowest
        i = 0
        while not stop.is_set():
            started = time.monotonic()
            outcomes.append((started, await cache.aset(f"a{n}-{i}", i)))
            await cache.aget(f"a{n}-{i}")
            await cache.aget_many([f"a{n}-{i}", "absent"])
            slowest = max(slowest, time.monotonic() - started)
            i += 1
            await asyncio.sleep(0.001)  # let the phase changes below run between steps

    async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "state never reached"
            await asyncio.sleep(0.005)

    def acked_since(moment: float) -> int:
        return sum(1 for started, ok in outcomes if ok and started > moment)

    try:
        run = asyncio.gather(*[worker(n) for n in range(20)])
        await until(lambda: acked_since(0) >= 100)
        await asyncio.to_thread(server.stop)
        stopped = time.monotonic()
        await until(lambda: sum(1 for started, ok in outcomes if not ok and started > stopped) >= 100)
        await asyncio.to_thread(server.start)
        restarted = time.monotonic()
        await until(lambda: acked_since(restarted) >= 100, timeout=2.0)
        first_ack = min(started for started, ok in outcomes if ok and started > restarted)
        stop.set()
        await run  # any exception from a cache call would surface here
        assert first_ack - restarted < 1.0, "Redis not used again within a second of its return"
        assert slowest < 3 * WORST_CALL  # three calls per step, each bounded
        assert cache.get_stats()["errors"] > 0
    finally:
        stop.set()
        await cache.aclose()


@pytest.mark.redis
async def test_dns_on_a_redis_backend_keeps_resolving_when_redis_dies(fresh_redis_server, dns_server):
    server: RedisServer = fresh_redis_server
    config = DNSConfig(cache_type=CacheType.REDIS, redis_url=server.url, redis_timeout_seconds=REDIS_TIMEOUT)
    dns = DNSCache(config, nameservers=[dns_server.address])
    try:
        assert await dns.resolve("example.test") == ["192.0.2.1", "2001:db8::1"]
        await asyncio.to_thread(server.stop)
        for _ in range(20):  # every read misses, every write fails: upstream answers each time
            assert await dns.resolve("example.test") == ["192.0.2.1", "2001:db8::1"]
        assert dns.get_stats()["errors"] > 0
        await asyncio.to_thread(server.start)
        queries = dns_server.total_queries
        deadline = time.monotonic() + 2.0
        while dns_server.total_queries - queries < 100 and time.monotonic() < deadline:
            before = dns_server.total_queries
            await dns.resolve("example.test")
            if dns_server.total_queries == before:
                break  # answered from Redis again
            await asyncio.sleep(0.01)
        before = dns_server.total_queries
        assert await dns.resolve("example.test") == ["192.0.2.1", "2001:db8::1"]
        assert dns_server.total_queries == before, "Redis is back but the answer was not cached"
    finally:
        await dns.aclose()


# ---------------------------------------------------------------------- OSV / NVD
@pytest.mark.parametrize("kind", ["drop", "truncated", "malformed"])
async def test_osv_fault_that_never_ends_is_an_error_naming_the_endpoint_and_nothing_is_cached(
        make_vulndb, osv_server, kind):
    vulndb = make_vulndb(max_retries=2)
    osv_server.inject(kind, count=1000, path="/v1/query")
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_vulnerability_db(JINJA)
    assert info.value.endpoint == f"POST {osv_server.url}/v1/query"
    assert "gave up after 3 attempt" in info.value.reason
    assert osv_server.requests["/v1/query"] == 3 and len(vulndb.sleeps.calls) == 2
    assert len(vulndb.cache) == 0
    osv_server.clear_faults()
    assert len(await vulndb.query_vulnerability_db(JINJA)) == 5


async def test_concurrent_callers_of_a_failing_query_share_one_retry_sequence(make_vulndb, osv_server):
    vulndb = make_vulndb(max_retries=2)
    osv_server.inject("503", count=1000, path="/v1/query")
    outcomes = await asyncio.gather(*[vulndb.query_vulnerability_db(JINJA) for _ in range(50)],
                                    return_exceptions=True)
    assert all(isinstance(o, VulnDBError) for o in outcomes)
    assert osv_server.requests["/v1/query"] == 3  # not 50 x 3: no retry storm


@pytest.mark.parametrize(("kind", "params"), [("429", {"retry_after": "2"}), ("503", {}), ("drop", {}),
                                              ("truncated", {}), ("malformed", {}), ("wrong_shape", {})])
async def test_nvd_faults_on_the_seed_cve_are_retried_then_answered(make_vulndb, osv_server, kind, params):
    vulndb = make_vulndb(max_retries=3, backoff_max_seconds=5)
    osv_server.inject(kind, count=2, path=NVD_PATH, **params)
    result = await vulndb.query_vulnerability_db(LOG4J)
    assert result.ids == ["CVE-2021-44228"] and result.source == "nvd"
    assert osv_server.requests[NVD_PATH] == 3 and len(vulndb.sleeps.calls) == 2
    if kind == "429":
        assert vulndb.sleeps.calls == [2.0, 2.0]  # Retry-After honoured


@pytest.mark.parametrize("kind", ["429", "503", "drop", "truncated", "malformed"])
async def test_nvd_fault_that_never_ends_names_nvd_and_caches_nothing(make_vulndb, osv_server, kind):
    vulndb = make_vulndb(max_retries=2)
    osv_server.inject(kind, count=1000, path=NVD_PATH)
    with pytest.raises(VulnDBError) as info:
        await vulndb.query_vulnerability_db(LOG4J)
    assert info.value.endpoint == f"GET {osv_server.nvd_url}"
    assert osv_server.requests[NVD_PATH] == 3
    assert len(vulndb.cache) == 0
    osv_server.clear_faults()
    assert (await vulndb.query_vulnerability_db(LOG4J)).ids == ["CVE-2021-44228"]


@pytest.mark.parametrize("kind", ["503", "drop", "truncated"])
async def test_seed_cve_is_served_stale_when_both_apis_fail_after_expiry(make_vulndb, osv_server, fake_clock,
                                                                         kind):
    vulndb = make_vulndb(ttl_seconds=60, stale_ttl_seconds=3600, max_retries=1)
    fresh = await vulndb.query_vulnerability_db(LOG4J)
    fake_clock.advance(120)
    osv_server.inject(kind, count=1000)
    stale = await vulndb.query_vulnerability_db(LOG4J)
    assert stale == fresh and stale.stale and vulndb.get_stats()["stale_served"] == 1
    fake_clock.advance(3600)
    with pytest.raises(VulnDBError):
        await vulndb.query_vulnerability_db(LOG4J)
