"""The dashboard page in a real headless Chromium (Debian's, driven by selenium through chromedriver):
it loads with no request leaving the machine, and its numbers move while a loopback scan runs."""

from __future__ import annotations

import asyncio
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from scancache import metrics  # noqa: E402
from scancache.config import CacheConfig, CacheType  # noqa: E402
from scancache.dashboard import AlertRules, serve_dashboard  # noqa: E402
from scancache.dns.cache import DNSCache  # noqa: E402
from scancache.dns.pool import ResolverPool  # noqa: E402
from scancache.testing.dns_server import LoopbackDNSServer  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)")

NAMES = [f"host{i}.test" for i in range(200)]


@pytest.fixture
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _scan_until(stop: threading.Event, dns: DNSCache) -> None:
    """A loopback scan: resolve the same names over and over (misses first, then hits)."""
    async def main() -> None:
        while not stop.is_set():
            await asyncio.gather(*(dns.resolve(name) for name in NAMES[:50]), return_exceptions=True)
            await asyncio.sleep(0.05)

    asyncio.run(main())


async def _resolve_all(dns: DNSCache, names: list[str]) -> None:
    for name in names:
        assert await dns.resolve(name) == ["192.0.2.7"]


@pytest.mark.timeout(240)
def test_page_shows_live_numbers_while_a_scan_runs(browser: object, tmp_path: Path) -> None:
    with LoopbackDNSServer({name: "192.0.2.7" for name in NAMES}) as dns_server, \
            LoopbackDNSServer({name: "192.0.2.7" for name in NAMES}) as second_server:
        dns = DNSCache(CacheConfig(cache_type=CacheType.MEMORY, enable_metrics=False),
                       nameservers=[dns_server.address])
        # A second DNS cache over a resolver pool of both servers: its card has a per-resolver table.
        pooled = DNSCache(CacheConfig(cache_type=CacheType.MEMORY, enable_metrics=False),
                          upstream=ResolverPool([dns_server.address, second_server.address],
                                                    rng=random.Random(18)))
        asyncio.run(_resolve_all(pooled, NAMES[:20]))
        registry = metrics.MetricsRegistry()
        registry.register_cache("dns", dns)
        registry.register_cache("dns-pool", pooled)
        server = serve_dashboard(caches=[dns], collect=lambda: metrics.get_monitoring_data(registry),
                                 alerts=AlertRules(hit_rate_below=0.5, hit_rate_for_seconds=30))
        stop = threading.Event()
        scanner = threading.Thread(target=_scan_until, args=(stop, dns), daemon=True)
        try:
            browser.get(server.url)  # type: ignore[attr-defined]
            wait = WebDriverWait(browser, 90, poll_frequency=0.2)
            hits = '[data-section="caches"][data-cache="dns"] [data-field="total_hits"]'
            first = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, hits).text)
            scanner.start()
            seen = {first}
            wait.until(lambda d: (seen.add(d.find_element(By.CSS_SELECTOR, hits).text), len(seen) >= 3)[1])
            status = browser.find_element(By.ID, "status").text  # type: ignore[attr-defined]
            assert status == "live"
            rate = browser.find_element(  # type: ignore[attr-defined]
                By.CSS_SELECTOR, '[data-cache="dns"] [data-field="hits"]').text
            assert rate not in ("", "\u2013")  # an en dash stands for "no figure yet"
            alert = browser.find_element(By.CSS_SELECTOR, 'tr[data-alert="hit_rate_low"]')  # type: ignore[attr-defined]
            assert alert.get_attribute("data-firing") == "0"
            assert browser.find_elements(By.CSS_SELECTOR, ".uplot canvas")  # type: ignore[attr-defined]
            rows = browser.find_elements(  # type: ignore[attr-defined]
                By.CSS_SELECTOR, '[data-cache="dns-pool"] table.resolvers tr[data-resolver]')
            assert sorted(r.get_attribute("data-resolver") for r in rows) == \
                sorted([dns_server.address, second_server.address])
            assert all(int(r.find_elements(By.TAG_NAME, "td")[1].text) >= 1 for r in rows)  # sent
            shot = tmp_path / "dashboard.png"
            assert browser.save_screenshot(str(shot))  # type: ignore[attr-defined]
            print(f"dashboard screenshot: {shot}")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
            errors = [entry for entry in browser.get_log("browser")  # type: ignore[attr-defined]
                      if entry["level"] == "SEVERE"]
            assert errors == []
        finally:
            stop.set()
            if scanner.is_alive():
                scanner.join(30)
            server.stop()
            asyncio.run(dns.aclose())
            asyncio.run(pooled.aclose())
