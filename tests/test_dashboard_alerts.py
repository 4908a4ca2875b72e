"""Alert rules: read from the config's [alerts] section, evaluated over samples, exported to Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest

from scancache.alerts import AlertRules, AlertState, load_rules
from scancache.config import load_config
from scancache.prometheus import render


def _frame(hits: float, misses: float, errors: float = 0.0, waits: float | None = None) -> dict:
    lookups = hits + misses
    frame = {"rate": {"hits": hits, "misses": misses, "errors": errors}, "dt": 1.0,
             "window_hit_rate": hits / lookups if lookups else None}
    if waits is not None:
        frame["rate"]["nvd_rate_waits"] = waits
        frame["nvd_rate_waits"] = 0
    return frame


def test_rules_come_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "scancache.toml"
    path.write_text("[cache]\nttl_seconds = 60\n[alerts]\nhit_rate_below = 0.5\nhit_rate_for_seconds = 30\n"
                    "error_rate_above = 2\n")
    load_config(path)  # the section is known to the loader
    assert load_rules(path) == AlertRules(hit_rate_below=0.5, hit_rate_for_seconds=30, error_rate_above=2)
    assert load_rules(None) == AlertRules() and not AlertRules().any
    path.write_text("[alerts]\nhit_rate_belw = 0.5\n")
    with pytest.raises(ValueError, match="hit_rate_belw"):
        load_rules(path)
    path.write_text("[alerts]\nhit_rate_below = 5\n")
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_rules(path)


def test_hit_rate_fires_only_after_it_stays_low_long_enough() -> None:
    state = AlertState(AlertRules(hit_rate_below=0.5, hit_rate_for_seconds=10))
    assert not state.evaluate(100.0, {"dns": _frame(1, 9)})[0]["firing"]     # low since 100
    assert not state.evaluate(105.0, {"dns": _frame(0, 0)})[0]["firing"]     # no lookups: spell goes on
    row = state.evaluate(110.0, {"dns": _frame(2, 8)})[0]
    assert row["firing"] and row["since"] == 100.0 and row["value"] == pytest.approx(0.2)
    assert not state.evaluate(111.0, {"dns": _frame(9, 1)})[0]["firing"]     # recovered: spell over
    assert not state.evaluate(120.0, {"dns": _frame(1, 9)})[0]["firing"]     # a new spell starts


def test_error_rate_and_nvd_waits() -> None:
    state = AlertState(AlertRules(error_rate_above=1.0, nvd_rate_waits_per_minute_above=2))
    rows = state.evaluate(0.0, {"vulndb": _frame(1, 1, errors=3, waits=1)})
    assert {r["alert"]: r["firing"] for r in rows} == {"error_rate_high": True, "nvd_rate_waits_high": False}
    state.evaluate(30.0, {"vulndb": _frame(1, 1, waits=1)})
    rows = state.evaluate(50.0, {"vulndb": _frame(1, 1, waits=1)})
    assert {r["alert"]: r["firing"] for r in rows} == {"error_rate_high": False, "nvd_rate_waits_high": True}
    rows = state.evaluate(200.0, {"vulndb": _frame(1, 1, waits=0)})  # older waits left the minute
    assert not any(r["firing"] for r in rows)


def test_alerts_are_a_prometheus_gauge() -> None:
    text = render({"alerts": [{"alert": "hit_rate_low", "cache": "dns", "firing": True},
                              {"alert": "error_rate_high", "cache": "dns", "firing": False}],
                   "fleet": {"workers": [{}, {}]}})
    assert "# TYPE scancache_alert_firing gauge" in text
    assert 'scancache_alert_firing{alert="hit_rate_low",cache="dns"} 1' in text
    assert 'scancache_alert_firing{alert="error_rate_high",cache="dns"} 0' in text
    assert "scancache_fleet_workers 2" in text
