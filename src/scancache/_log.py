"""Loggers that import `logging` on first use, and a logging set-up applied when logging is imported.

`import logging` costs milliseconds (it pulls traceback, string, threading, weakref), and a warm,
clean `scancache audit` logs nothing, so scancache's modules do not import it at load time:

    from scancache._log import get_logger
    log = get_logger("scancache.cache")
    log.warning("cache %s: ...", name)   # imports logging now, then logs as logging.getLogger would

`get_logger(name).<attribute>` is `logging.getLogger(name).<attribute>`, looked up on each use, so the
caller calls the real Logger's method itself: records keep their caller's file, line and function.
debug() and info() while logging has never been imported are dropped without importing it: no code
could have set a level below WARNING (the root logger's default) without importing logging first.

`setup_on_import(setup)` runs setup() right after logging is first imported, by anyone (a scancache
logger, asyncio, an HTTP client), or at once when it already is: the CLI uses it to keep its logging
set-up (third-party warnings hidden, scancache's warnings collected) without importing logging on a
run that never logs. Only `sys` is imported here.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `from typing import ...`: typing alone costs milliseconds at startup
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

__all__ = ["LazyLogger", "get_logger", "setup_on_import"]

#: The set-up still to run when logging is imported (None: nothing pending).
_pending: Callable[[], None] | None = None


def _ignore(*args: object, **kwargs: object) -> None:
    """What debug() and info() are while logging has never been imported: below any level set."""


class LazyLogger:
    """logging.getLogger(name), fetched (and logging imported) the first time an attribute is used."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        logger = self._logger
        if logger is None:
            if attribute in ("debug", "info") and "logging" not in sys.modules:
                return _ignore
            import logging

            _run_pending()  # when logging was imported before the hook was installed
            logger = self._logger = logging.getLogger(self.name)
        return getattr(logger, attribute)

    def __repr__(self) -> str:
        return f"<LazyLogger {self.name}>"


def get_logger(name: str) -> LazyLogger:
    """A stand-in for logging.getLogger(name) that imports logging only when first used."""
    return LazyLogger(name)


def setup_on_import(setup: Callable[[], None]) -> None:
    """Run setup() right after logging is first imported (now, if it already is).

    A second call before logging is imported replaces the pending set-up (a process running the CLI
    twice wants the last one).
    """
    global _pending
    if "logging" in sys.modules:
        _pending = None
        setup()
        return
    _pending = setup
    if not any(isinstance(finder, _AfterLoggingImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterLoggingImport())


def _run_pending() -> None:
    global _pending
    setup, _pending = _pending, None
    if setup is not None:
        setup()


class _AfterLoggingImport:
    """A sys.meta_path finder that finds nothing itself: for `logging`, it wraps the spec the other
    finders give so that the pending set-up runs once the module has executed, then steps aside."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """None, except for logging: the normal spec with a loader that runs the set-up after it."""
        if fullname != "logging":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AfterLoggingImport)]
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec  # not wrappable: a scancache logger's first use still runs the set-up
        spec.loader = _SetupAfterExec(loader)
        return spec


class _SetupAfterExec:
    """A loader that puts the real one back, lets it execute the module, then runs the set-up."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        """The real loader's module (None: the default one)."""
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        """Execute module with the real loader (as if never wrapped), then the pending set-up."""
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _run_pending()
