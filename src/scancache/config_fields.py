"""Checks shared by every settings dataclass (CacheConfig, DNSConfig, VulnDBConfig, LazyLoadConfig).

Below all of them: each config module imports these, none of these imports a config, so the config
modules form a tree instead of a circle. Every check raises ValueError naming the field, because a
typo in a config file must fail at load time, not deep inside a scan.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import TypeVar

__all__ = ["config_from_mapping", "is_number", "parse_enum", "require", "split_list"]

_E = TypeVar("_E", bound=enum.Enum)
_C = TypeVar("_C")


def require(condition: bool, name: str, message: str) -> None:
    """Raise ValueError("name: message") unless condition holds."""
    if not condition:
        raise ValueError(f"{name}: {message}")


def is_number(value: object) -> bool:
    """True for an int or float that is not a bool (True is an int to Python, never a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def split_list(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated list ("a, b,,c" -> ["a", "b", "c"])."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_enum(enum_type: type[_E], value: _E | str, field_name: str) -> _E:
    """The member of enum_type that value is or names (by name or value, any case)."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for member in enum_type:
            if text in (str(member.value).lower(), member.name.lower()):
                return member
    choices = ", ".join(str(m.value) for m in enum_type)
    raise ValueError(f"{field_name}: unknown value {value!r} (choose one of {choices})")


def config_from_mapping(config_type: type[_C], data: object, section: str) -> _C:
    """An instance of a config dataclass from a file's section; ValueError names unknown keys."""
    if not isinstance(data, Mapping):
        raise ValueError(f"[{section}]: must be a table of settings, got {type(data).__name__}")
    if not is_dataclass(config_type):
        raise TypeError(f"{config_type!r} is not a dataclass")
    known = {f.name for f in fields(config_type)}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise ValueError(f"[{section}]: unknown setting(s) {', '.join(unknown)}")
    try:
        return config_type(**data)
    except (TypeError, ValueError) as exc:  # wrong types, or a value __post_init__ refused
        raise ValueError(f"[{section}]: {exc}") from None

