"""Wildcard zones: answers that exist only because of `*.zone` are flagged, real records never are.

A wildcard zone with real records under it (on our loopback server and on dnsmasq): names the
wildcard answers are flagged, the real records with their own answers are not (no false drops),
and each parent zone is probed once per type, with the probes cached for their TTL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scancache import DNSCache, DNSConfig
from scancache.testing.dns_server import LoopbackDNSServer
from scancache.testing.dnsmasq import Dnsmasq, dnsmasq_path

WILD = "192.0.2.99"


@pytest.fixture
def zone() -> Iterator[LoopbackDNSServer]:
    with LoopbackDNSServer({"*.wild.test": WILD, "real.wild.test": "192.0.2.5",
                            "www.plain.test": "192.0.2.6"}, ttl=300) as server:
        server.add("*.wild.test", "MX", "10 catchall.wild.test.")
        server.add("real.wild.test", "MX", "5 mx.real.wild.test.")
        yield server


async def flags(dns: DNSCache, name: str, rdtype: str | None = "A") -> bool:
    result = await dns.query(name, rdtype)
    return await dns.check_wildcard(result)


async def test_wildcard_answers_flagged_real_records_kept(zone):
    async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[zone.address]) as dns:
        assert await flags(dns, "anything.wild.test")
        assert await flags(dns, "deeper.level.wild.test")  # *.wild.test answers below, too
        assert not await flags(dns, "real.wild.test")  # a real record, its own address
        assert not await flags(dns, "www.plain.test")  # no wildcard in plain.test
        assert not await flags(dns, "real.wild.test", "MX")
        assert await flags(dns, "other.wild.test", "MX")
        assert not await flags(dns, "missing.plain.test")  # NXDOMAIN is never a wildcard answer
        stats = dns.get_stats()
        assert stats["wildcard_flagged"] == 3


async def test_each_parent_zone_is_probed_once_per_type_and_probes_are_not_cached_as_names(zone):
    async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[zone.address]) as dns:
        for i in range(50):
            assert await flags(dns, f"host{i}.wild.test")
        probes = dns.get_stats()["wildcard_probes"]
        assert probes == 3  # three random labels for wild.test/A, then the cached set
        assert not await flags(dns, "www.plain.test")
        assert dns.get_stats()["wildcard_probes"] == 4  # one NXDOMAIN probe settles plain.test
        assert dns.get_stats()["size"] == 50 + 1 + 2  # names + www.plain.test + two wildcard sets


async def test_a_failing_probe_flags_nothing_and_is_asked_again(zone):
    async with DNSCache(DNSConfig(timeout_seconds=0.3, attempts=1),
                        nameservers=[zone.address]) as dns:
        result = await dns.query("x.wild.test", "A")
        zone.servfail()  # every probe now fails
        assert not await dns.check_wildcard(result)
        zone.heal()
        assert await dns.check_wildcard(result)


needs_dnsmasq = pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed")


@needs_dnsmasq
async def test_dnsmasq_wildcard_zone():
    options = ["--local-ttl=60", f"--address=/wild.test/{WILD}",
               "--host-record=real.wild.test,192.0.2.5"]
    with Dnsmasq(options) as server:
        async with DNSCache(DNSConfig(timeout_seconds=1), nameservers=[server.address]) as dns:
            assert await flags(dns, "random-name.wild.test")
            assert not await flags(dns, "real.wild.test")


def test_cli_flags_and_filters_wildcards(zone, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}
    env["SCANCACHE_CACHE_DIR"] = str(tmp_path / "cache")
    args = [sys.executable, "-m", "scancache", "resolve", "--rdtype", "A", "--nameserver",
            zone.address, "a.wild.test", "b.wild.test", "real.wild.test", "www.plain.test"]
    unchecked = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60,
                               check=False)
    assert {json.loads(line)["wildcard"] for line in unchecked.stdout.splitlines()} == {None}
    sent = zone.total_queries
    assert sent == 4  # no probes unless asked for
    done = subprocess.run([*args, "--wildcards"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rows = {row["host"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert rows["a.wild.test"]["wildcard"] is True and rows["b.wild.test"]["wildcard"] is True
    assert rows["real.wild.test"]["wildcard"] is False
    filtered = subprocess.run([*args, "--filter-wildcards"], capture_output=True, text=True, env=env,
                              timeout=60, check=False)
    assert filtered.returncode == 0, filtered.stderr
    kept = {json.loads(line)["host"] for line in filtered.stdout.splitlines()}
    assert kept == {"real.wild.test", "www.plain.test"}
