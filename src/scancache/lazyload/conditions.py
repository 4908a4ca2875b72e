"""Conditions for the CONDITIONAL strategy: a predicate, or a simple rule written as a string.

Rules (usable in config files): "env:NAME" (variable set, not empty, not "0"), "env:NAME=value",
"platform:linux" (sys.platform starts with it), "module:name" (already imported). A leading "not:"
inverts any rule, e.g. "not:platform:win".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Condition", "parse_condition", "make_condition"]


@dataclass(frozen=True)
class Condition:
    """A named predicate; `description` is what error messages and monitoring show."""

    description: str
    predicate: Callable[[], bool]

    def holds(self) -> bool:
        """Evaluate now (conditions are checked at each load request, not cached)."""
        return bool(self.predicate())


def _env_rule(spec: str) -> Callable[[], bool]:
    if "=" in spec:
        var, expected = spec.split("=", 1)
        return lambda: os.environ.get(var) == expected
    return lambda: os.environ.get(spec, "") not in ("", "0")


def parse_condition(text: str) -> Condition:
    """Parse "env:NAME", "env:NAME=value", "platform:prefix", "module:name" or "not:<rule>".

    Raises ValueError naming the rule when it is malformed.
    """
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"condition {text!r}: expected env:NAME, env:NAME=value, platform:NAME, "
                         "module:NAME or not:<condition>")
    kind, _, spec = text.partition(":")
    kind = kind.strip().lower()
    spec = spec.strip()
    if kind == "not":
        inner = parse_condition(spec)
        return Condition(text, lambda: not inner.holds())
    if not spec:
        raise ValueError(f"condition {text!r}: nothing after {kind!r}")
    if kind == "env":
        return Condition(text, _env_rule(spec))
    if kind == "platform":
        return Condition(text, lambda: sys.platform.startswith(spec))
    if kind == "module":
        return Condition(text, lambda: spec in sys.modules)
    raise ValueError(f"condition {text!r}: unknown kind {kind!r} (env, platform, module or not)")


def make_condition(predicate: Callable[[], bool] | str | None = None, *, env: str | None = None,
                   platform: str | None = None, module: str | None = None) -> Condition:
    """Build one Condition from a predicate, a rule string, or keyword rules (all must hold)."""
    parts: list[Condition] = []
    if isinstance(predicate, str):
        parts.append(parse_condition(predicate))
    elif predicate is not None:
        if not callable(predicate):
            raise TypeError(f"condition must be callable or a rule string, got {predicate!r}")
        parts.append(Condition(getattr(predicate, "__name__", repr(predicate)), predicate))
    if env is not None:
        parts.append(parse_condition(f"env:{env}"))
    if platform is not None:
        parts.append(parse_condition(f"platform:{platform}"))
    if module is not None:
        parts.append(parse_condition(f"module:{module}"))
    if not parts:
        raise ValueError("a condition needs a predicate, a rule string, env=, platform= or module=")
    if len(parts) == 1:
        return parts[0]
    return Condition(" and ".join(p.description for p in parts), lambda: all(p.holds() for p in parts))
