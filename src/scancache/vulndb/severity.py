"""How bad an advisory is: a CVSS base score computed from OSV `severity` vectors (v3.x, v4.0) with
the `cvss` library, and the GHSA `database_specific.severity` label where present.

The label of a finding is the CVSS rating of its highest base score (FIRST's bands: low < 4.0 <=
medium < 7.0 <= high < 9.0 <= critical); without a vector, the GHSA label (MODERATE reads as
medium); without either, "unknown". The `cvss` library is imported on the first vector only.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

__all__ = ["LEVELS", "Severity", "severity_of", "score_vector", "level_rank"]

#: Severity labels, least to most severe; "unknown" ranks as failing in a gate (see policy).
LEVELS = ("none", "low", "medium", "high", "critical")
_GHSA = {"LOW": "low", "MODERATE": "medium", "MEDIUM": "medium", "HIGH": "high", "CRITICAL": "critical"}


class Severity(tuple):
    """(label, score or None, vector): label one of LEVELS or "unknown"."""

    __slots__ = ()

    def __new__(cls, label: str, score: float | None = None, vector: str = "") -> Severity:
        return super().__new__(cls, (label, score, vector))

    label = property(lambda self: self[0])
    score = property(lambda self: self[1])
    vector = property(lambda self: self[2])


def level_rank(label: str) -> int:
    """Position of a label in LEVELS; "unknown" ranks above critical (a gate never lets it pass)."""
    return LEVELS.index(label) if label in LEVELS else len(LEVELS)


def _band(score: float) -> str:
    if score == 0:
        return "none"
    if score < 4.0:
        return "low"
    if score < 7.0:
        return "medium"
    if score < 9.0:
        return "high"
    return "critical"


@lru_cache(maxsize=4096)
def score_vector(vector: str) -> float | None:
    """The CVSS base score of a v3.x or v4.0 vector string; None when it does not parse."""
    if not vector.startswith(("CVSS:3.", "CVSS:4.")):
        return None
    from cvss import CVSS3, CVSS4  # type: ignore[import-untyped]  # the library ships no types

    try:
        if vector.startswith("CVSS:4."):
            return float(CVSS4(vector).base_score)
        return float(CVSS3(vector).base_score)
    except Exception:  # the cvss library raises its own errors for malformed vectors
        return None


def severity_of(records: Iterable[dict[str, Any]]) -> Severity:
    """The severity of one flaw described by records (aliases of each other): the highest score."""
    best: tuple[float, str] | None = None
    label = ""
    for record in records:
        for entry in record.get("severity") or ():
            if not isinstance(entry, dict) or not isinstance(entry.get("score"), str):
                continue
            score = score_vector(entry["score"])
            if score is not None and (best is None or score > best[0]):
                best = (score, entry["score"])
        database = record.get("database_specific")
        if isinstance(database, dict) and isinstance(database.get("severity"), str):
            found = _GHSA.get(database["severity"].upper())
            if found and level_rank(found) > level_rank(label or "none"):
                label = found
    if best is not None:
        return Severity(_band(best[0]), best[0], best[1])
    return Severity(label or "unknown")
