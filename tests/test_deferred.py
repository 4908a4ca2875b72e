"""scancache._deferred: a module in sys.modules whose code runs on first use of one of its names.

Subprocesses: the question is what a fresh interpreter runs (pytest itself has imported inspect).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _run(code: str, cwd: Path | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, check=False, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_a_deferred_module_runs_none_of_it_until_a_name_is_read() -> None:
    out = _run("""
        import sys
        from scancache._deferred import defer
        print(defer("inspect"))
        import dataclasses

        @dataclasses.dataclass
        class Documented:
            "A docstring: dataclasses has no need of inspect."
            x: int = 0

        print(type(sys.modules["inspect"]).__name__, "ast" in sys.modules, "dis" in sys.modules)

        @dataclasses.dataclass
        class Undocumented:  # dataclasses writes its docstring with inspect.signature
            x: int = 0

        import inspect
        print(type(inspect).__name__, inspect is dataclasses.inspect is sys.modules["inspect"])
        print(Undocumented.__doc__, "ast" in sys.modules)
        from inspect import signature
        print(signature(Documented))
    """)
    assert out.splitlines() == ["True", "_Deferred False False", "module True",
                                "Undocumented(x: int = 0) True", "(x: int = 0) -> None"]


def test_a_from_import_runs_it_and_the_module_is_whole() -> None:
    out = _run("""
        import sys
        from scancache._deferred import defer
        defer("inspect")
        from inspect import Parameter, isfunction
        import inspect
        print(isfunction(defer), Parameter.KEYWORD_ONLY.name, inspect.__file__.endswith("inspect.py"))
        print(inspect.__spec__.name, inspect.__name__, type(inspect).__name__)
    """)
    assert out.splitlines() == ["True KEYWORD_ONLY True", "inspect inspect module"]


def test_what_cannot_or_need_not_be_deferred_is_left_alone() -> None:
    out = _run("""
        import sys
        from scancache._deferred import defer
        print(defer("os"), defer("sys"), defer("json"), defer("email.utils"), defer("no_such_module_x"))
        print(type(sys.modules["os"]).__name__, "json" in sys.modules, "no_such_module_x" in sys.modules)
    """)
    # os: imported already; sys: built in; json: a package; email.utils: not top-level; unknown
    assert out.splitlines() == ["False False False False False", "module False False"]


def test_threads_reading_it_at_once_run_it_once_and_see_it_whole() -> None:
    out = _run("""
        import sys, threading
        from scancache._deferred import defer
        defer("inspect")
        import inspect
        barrier = threading.Barrier(8)
        seen = []
        def read():
            barrier.wait()
            seen.append(inspect.signature)
        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(len(seen), len({id(f) for f in seen}), seen[0] is sys.modules["inspect"].signature)
    """)
    assert out.split() == ["8", "1", "True"]


def test_a_module_that_fails_fails_as_its_import_would(tmp_path: Path) -> None:
    (tmp_path / "breaks_on_import.py").write_text("x = 1\nraise RuntimeError('no')\n", encoding="utf-8")
    out = _run("""
        import sys
        sys.path.insert(0, ".")
        from scancache._deferred import defer
        print(defer("breaks_on_import"))
        import breaks_on_import
        try:
            breaks_on_import.x
        except RuntimeError as exc:
            print("raised", exc, "breaks_on_import" in sys.modules)
        try:
            import breaks_on_import
        except RuntimeError as exc:
            print("again", exc)
    """, cwd=tmp_path)
    assert out.splitlines() == ["True", "raised no False", "again no"]


def test_extension_modules_are_never_deferred() -> None:
    out = _run("""
        import sys
        from scancache._deferred import defer
        print(defer("_sqlite3" if "_sqlite3" not in sys.modules else "_decimal"), defer("math"))
    """)
    assert out.split() == ["False", "False"]
