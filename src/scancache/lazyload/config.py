"""LazyLoadConfig and LazyLoadStrategy, as the seed describes them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from scancache.config_fields import config_from_mapping, is_number, parse_enum, require

__all__ = ["LazyLoadConfig", "LazyLoadStrategy"]


class LazyLoadStrategy(enum.Enum):
    """When modules are imported."""

    ON_DEMAND = "on_demand"
    BACKGROUND = "background"
    PRELOAD = "preload"
    CONDITIONAL = "conditional"

    @classmethod
    def parse(cls, value: LazyLoadStrategy | str) -> LazyLoadStrategy:
        """Accept a member or its name/value in any case."""
        return parse_enum(cls, value, "strategy")


@dataclass
class LazyLoadConfig:
    """Settings of a LazyModuleLoader: the seed's fields plus a few with safe defaults.

    main_thread_modules: modules that must import on the main thread (they install signal handlers).
    trace_memory: also measure each load with tracemalloc (slows imports down while it traces).
    conditions: module name -> rule such as "env:SCAN_PCAP" or "platform:linux" (see
    scancache.lazyload.conditions); a module whose rule does not hold is refused (or skipped at preload).
    """

    strategy: LazyLoadStrategy = LazyLoadStrategy.ON_DEMAND
    preload_modules: list[str] = field(default_factory=list)
    background_workers: int = 2
    load_timeout: float = 30.0
    enable_monitoring: bool = True
    cache_loaded_modules: bool = True
    memory_limit_mb: float = 256
    main_thread_modules: list[str] = field(default_factory=list)
    trace_memory: bool = False
    conditions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.strategy = LazyLoadStrategy.parse(self.strategy)
        require(isinstance(self.preload_modules, list | tuple)
                and all(isinstance(m, str) and m for m in self.preload_modules),
                "preload_modules", "must be a list of module names")
        self.preload_modules = list(self.preload_modules)
        require(isinstance(self.background_workers, int) and self.background_workers >= 1,
                "background_workers", "must be an integer >= 1")
        require(is_number(self.load_timeout) and self.load_timeout > 0, "load_timeout",
                "must be a positive number of seconds")
        require(is_number(self.memory_limit_mb) and self.memory_limit_mb > 0, "memory_limit_mb",
                "must be a positive number")
        for name in ("enable_monitoring", "cache_loaded_modules", "trace_memory"):
            require(isinstance(getattr(self, name), bool), name, "must be true or false")
        require(isinstance(self.main_thread_modules, list | tuple)
                and all(isinstance(m, str) and m for m in self.main_thread_modules),
                "main_thread_modules", "must be a list of module names")
        self.main_thread_modules = list(self.main_thread_modules)
        require(isinstance(self.conditions, dict), "conditions",
                "must be a table of module name -> condition rule")
        if not self.conditions:
            return
        from scancache.lazyload.conditions import parse_condition  # only rules need the parser

        for module_name, rule in self.conditions.items():
            try:
                parse_condition(rule)
            except ValueError as exc:
                raise ValueError(f"conditions.{module_name}: {exc}") from None

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, section: str = "lazy") -> LazyLoadConfig:
        """Build from a config-file section; unknown keys are a ValueError naming them."""
        return config_from_mapping(cls, data, section)
