"""Fixtures for loopback OSV/NVD servers: real PyPI advisories from tests/data, fast retry settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scancache.testing.osv_server import OSVTestServer, load_records
from support import FakeClock

DATA_DIR = Path(__file__).parent / "data"
SUBSET_ZIP = DATA_DIR / "osv-pypi-subset.zip"

#: An NVD `cve` object (NVD's public data, trimmed) for the seed's log4j example.
LOG4J_CVE = {
    "id": "CVE-2021-44228",
    "sourceIdentifier": "security@apache.org",
    "published": "2021-12-10T10:15:09.143",
    "lastModified": "2024-07-24T17:08:24.167",
    "vulnStatus": "Analyzed",
    "descriptions": [{"lang": "en", "value": "Apache Log4j2 2.0-beta9 through 2.15.0 (excluding "
                      "security releases 2.12.2, 2.12.3, and 2.3.1) JNDI features used in "
                      "configuration, log messages, and parameters do not protect against attacker "
                      "controlled LDAP and other JNDI related endpoints."}],
    "metrics": {"cvssMetricV31": [{"cvssData": {
        "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "baseScore": 10.0}}]},
    "references": [{"url": "https://logging.apache.org/log4j/2.x/security.html"}],
    "configurations": [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": [
        {"vulnerable": True, "criteria": "cpe:2.3:a:apache:log4j:*:*:*:*:*:*:*:*"}]}]}],
}


class SleepRecorder:
    """An async sleep that returns at once and remembers what it was asked to wait (and moves a clock)."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


@pytest.fixture(scope="session")
def osv_records() -> dict[str, dict[str, Any]]:
    """{id: record} of the committed subset of real PyPI advisories."""
    return load_records(SUBSET_ZIP)


@pytest.fixture
def osv_server(osv_records: dict[str, dict[str, Any]]) -> Iterator[OSVTestServer]:
    """A loopback OSV + NVD server over the subset; /v1/query pages every 3 records."""
    with OSVTestServer(osv_records, page_size=3, nvd_records=[LOG4J_CVE],
                       max_lifetime_seconds=120) as server:
        yield server


@pytest.fixture
def fake_clock() -> FakeClock:
    """An epoch clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
async def make_vulndb(osv_server: OSVTestServer, fake_clock: FakeClock
                      ) -> AsyncIterator[Callable[..., Any]]:
    """Factory: VulnerabilityDBCache(config fields...) against osv_server, fake clock, instant sleeps.

    Each made cache has `.sleeps` (a SleepRecorder); all are closed after the test.
    """
    from scancache.vulndb.cache import VulnerabilityDBCache
    from scancache.vulndb.config import VulnDBConfig

    made: list[VulnerabilityDBCache] = []

    def make(*, server: OSVTestServer | None = None, clock: Any = None, **fields: Any) -> Any:
        srv = server or osv_server
        settings = {"osv_url": srv.url, "nvd_url": srv.nvd_url, "backoff_base_seconds": 0.01,
                    "backoff_max_seconds": 0.05, "max_retries": 3, "timeout_seconds": 5.0, **fields}
        sleeps = SleepRecorder()
        vulndb = VulnerabilityDBCache(VulnDBConfig(**settings), clock=clock or fake_clock, sleep=sleeps)
        vulndb.sleeps = sleeps  # type: ignore[attr-defined]
        made.append(vulndb)
        return vulndb

    yield make
    for vulndb in made:
        await vulndb.aclose()


@pytest.fixture
def vulndb(make_vulndb: Callable[..., Any]) -> Any:
    """A VulnerabilityDBCache (memory) against the loopback server, closed after the test."""
    return make_vulndb()
