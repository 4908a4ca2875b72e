"""Alert rules over the dashboard's frames: hit rate too low for too long, errors too frequent, NVD
rate-limit waits too frequent.

Rules come from the config file's [alerts] section (`load_rules(path)`) or AlertRules(...) in Python;
a rule left unset is off. Each evaluation returns one row per rule and cache, firing or not, so the
page can show them and Prometheus can alert on `scancache_alert_firing == 1`. Only the standard
library is imported: the config loader checks the section without the dashboard's extra.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["AlertRules", "AlertState", "load_rules"]


@dataclasses.dataclass(frozen=True)
class AlertRules:
    """Thresholds; None turns a rule off.

    hit_rate_below: fire when a cache's hit rate, over the lookups of each sample, stays below this
    (0..1) for hit_rate_for_seconds (samples without lookups neither start nor end the spell).
    error_rate_above: fire while a cache's backend errors per second exceed this.
    nvd_rate_waits_per_minute_above: fire while NVD rate-limit waits over the last minute exceed this.
    """

    hit_rate_below: float | None = None
    hit_rate_for_seconds: float = 60.0
    error_rate_above: float | None = None
    nvd_rate_waits_per_minute_above: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AlertRules:
        """Rules from a config section; ValueError names an unknown or bad setting."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                raise ValueError(f"[alerts]: unknown setting {name!r} (expected one of "
                                 f"{', '.join(sorted(known))})")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or value < 0):
                raise ValueError(f"[alerts]: {name} must be a non-negative number, got {value!r}")
            values[name] = None if value is None else float(value)
        rules = cls(**values)
        if rules.hit_rate_below is not None and rules.hit_rate_below > 1:
            raise ValueError("[alerts]: hit_rate_below is a ratio between 0 and 1")
        return rules

    @property
    def any(self) -> bool:
        """True when at least one rule is on."""
        return any(v is not None for v in (self.hit_rate_below, self.error_rate_above,
                                          self.nvd_rate_waits_per_minute_above))


class AlertState:
    """Remembers what a rule needs across samples (when a low hit rate began, recent NVD waits)."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules
        self._low_since: dict[str, float | None] = {}
        self._nvd_waits: dict[str, deque[tuple[float, float]]] = {}

    def evaluate(self, now: float, caches: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One row per (rule, cache): {alert, cache, firing, value, threshold, since}.

        caches: a frame's caches, each with "rate" (per second) and "window_hit_rate" (None when
        the sample had no lookups).
        """
        rules = self.rules
        rows: list[dict[str, Any]] = []
        for name, cache in caches.items():
            rate = cache.get("rate") or {}
            if rules.hit_rate_below is not None:
                window = cache.get("window_hit_rate")
                since = self._low_since.get(name)
                if window is not None:
                    since = (since or now) if window < rules.hit_rate_below else None
                    self._low_since[name] = since
                firing = since is not None and now - since >= rules.hit_rate_for_seconds
                rows.append({"alert": "hit_rate_low", "cache": name, "firing": firing,
                             "value": window, "threshold": rules.hit_rate_below, "since": since})
            if rules.error_rate_above is not None:
                errors = float(rate.get("errors", 0.0))
                rows.append({"alert": "error_rate_high", "cache": name,
                             "firing": errors > rules.error_rate_above, "value": errors,
                             "threshold": rules.error_rate_above, "since": None})
            if rules.nvd_rate_waits_per_minute_above is not None and "nvd_rate_waits" in cache:
                waits = self._nvd_waits.setdefault(name, deque())
                waits.append((now, float(rate.get("nvd_rate_waits", 0.0)) * float(cache.get("dt", 1.0))))
                while waits and waits[0][0] < now - 60:
                    waits.popleft()
                per_minute = sum(w for _, w in waits)
                rows.append({"alert": "nvd_rate_waits_high", "cache": name,
                             "firing": per_minute > rules.nvd_rate_waits_per_minute_above,
                             "value": per_minute, "threshold": rules.nvd_rate_waits_per_minute_above,
                             "since": None})
        return rows


def load_rules(path: str | Path | None) -> AlertRules:
    """The [alerts] section of the config file at path (no file, or no section: every rule off).
    ValueError names the file and the bad setting."""
    if path is None:
        return AlertRules()
    from scancache.config import _read_file  # the loader's own reader: one parser for every section

    section = _read_file(Path(path)).get("alerts") or {}
    if not isinstance(section, dict):
        raise ValueError(f"config file {path}: section [alerts] must be a table of settings")
    try:
        return AlertRules.from_mapping(section)
    except ValueError as exc:
        raise ValueError(f"config file {path}: {exc}") from None
