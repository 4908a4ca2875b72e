"""Generated fixture modules for the lazy-loading tests.

FixtureModules writes small modules with unique names (a per-test prefix) into a temporary
directory on sys.path, so no test depends on another having imported something first, and removes
them from sys.modules and sys.path afterwards. Kinds: counter (records each execution), slow (sleeps
in its body), gated (blocks until the test opens its gate), failing, circular pairs, side effects,
packages with a failing submodule, a module that imports a missing dependency, and a module that
calls back into the loader while it is being imported.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from pathlib import Path

from lazy_fixtures import counts

__all__ = ["FixtureModules", "counts"]

_PRELUDE = "from lazy_fixtures import counts as _counts\n_counts.bump(__name__)\n"


class FixtureModules:
    """Writes uniquely named modules under `root` (put on sys.path) and cleans up after a test."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.prefix = f"lzfx_{uuid.uuid4().hex[:10]}"
        sys.path.insert(0, str(self.root))

    def path_of(self, name: str) -> Path:
        """The file of generated module `name` (a module or a package's __init__)."""
        base = self.root.joinpath(*name.split("."))
        return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")

    def write(self, stem: str, source: str, *, counted: bool = True) -> str:
        """Write module `<prefix>_<stem>` (stem may be "pkg.sub"); return its importable name."""
        name = f"{self.prefix}_{stem}"
        parts = name.split(".")
        directory = self.root.joinpath(*parts[:-1])
        directory.mkdir(parents=True, exist_ok=True)
        for depth in range(1, len(parts)):
            init = self.root.joinpath(*parts[:depth], "__init__.py")
            if not init.exists():
                init.write_text(_PRELUDE)
        body = (_PRELUDE if counted else "") + textwrap.dedent(source)
        directory.joinpath(parts[-1] + ".py").write_text(body)
        importlib.invalidate_caches()  # the directory listing may be cached from a moment ago
        return name

    def counter(self, stem: str = "counter", value: int = 42) -> str:
        """A module whose body records its execution and defines VALUE."""
        return self.write(stem, f"VALUE = {value}\n")

    def slow(self, stem: str = "slow", seconds: float = 0.2) -> str:
        """A module whose body sleeps (an import that takes a while), then defines VALUE."""
        return self.write(stem, f"import time\ntime.sleep({seconds})\nVALUE = 'slow'\n")

    def gated(self, stem: str = "gated") -> str:
        """A module whose body blocks until counts.gate(name) is set (at most 10 s)."""
        return self.write(stem, "_counts.gate(__name__).wait(10)\nVALUE = 'gated'\n")

    def failing(self, stem: str = "failing", exc: str = "ValueError('boom from fixture')") -> str:
        """A module whose body raises `exc` after defining a name (a half-initialised module)."""
        return self.write(stem, f"HALF = True\n\ndef helper():\n    return 1\n\nraise {exc}\n")

    def circular(self, stem: str = "circ") -> tuple[str, str]:
        """Two modules that import each other at top level and use each other only in functions.

        Each sleeps before importing the other, so two threads importing one each are sure to hold
        both module locks at once: the deadlock a loader must survive. (Importing the other module
        first would add CPython 3.11's own race, where one thread can get _DeadlockError.)
        """
        a_name, b_name = f"{self.prefix}_{stem}_a", f"{self.prefix}_{stem}_b"
        self.write(f"{stem}_a", f"import time\ntime.sleep(0.05)\nimport {b_name}\n"
                                f"def ping():\n    return {b_name}.pong() + 1\n")
        self.write(f"{stem}_b", f"import time\ntime.sleep(0.05)\nimport {a_name}\n"
                                "def pong():\n    return 1\n")
        return a_name, b_name

    def side_effect(self, stem: str = "side") -> str:
        """A module whose body appends to counts.EVENTS via bump (its only side effect)."""
        return self.write(stem, "import os\nPID = os.getpid()\n")

    def failing_submodule(self, stem: str = "pkg") -> tuple[str, str]:
        """A package whose submodule `bad` raises; returns (package, package.bad)."""
        sub = self.write(f"{stem}.bad", "raise RuntimeError('bad submodule')\n")
        return sub.rsplit(".", 1)[0], sub

    def importer_of(self, stem: str, target: str) -> str:
        """A module whose body imports `target` (e.g. a failing or missing module)."""
        return self.write(stem, f"import {target}\n")

    def calls_hook(self, stem: str, target: str) -> str:
        """A module whose body calls counts.HOOK(target), e.g. a loader's load, while importing."""
        return self.write(stem, f"DEP = _counts.HOOK({target!r})\n")

    def allocating(self, stem: str = "alloc", megabytes: int = 4) -> str:
        """A module that keeps `megabytes` of fresh Python objects alive."""
        # b"x" * n writes every byte, so the pages count in RSS (bytes(n) would be lazily zeroed).
        return self.write(stem, f"BLOCKS = [b'x' * (1024 * 1024) for _ in range({megabytes})]\n")

    def cleanup(self) -> None:
        """Forget every generated module and take the directory off sys.path."""
        for name in [n for n in sys.modules if n.startswith(self.prefix)]:
            del sys.modules[name]
        if str(self.root) in sys.path:
            sys.path.remove(str(self.root))
        importlib.invalidate_caches()
