"""Lazy packages (scancache._attach): public names and submodules load on first use."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_submodule_read_as_an_attribute_is_imported_then() -> None:
    # A fresh interpreter: in this one the test suite has imported every submodule already.
    done = _run("import sys, scancache.cache\n"
                "assert 'scancache.cache.urls' not in sys.modules\n"
                "print(scancache.cache.urls.redact_url('redis://:secret@h:6379/0'))\n"
                "assert sys.modules['scancache.cache.urls'] is scancache.cache.urls\n")
    assert done.returncode == 0, done.stderr
    assert "secret" not in done.stdout and "***" in done.stdout


def test_an_unknown_name_is_an_attribute_error_and_a_broken_submodule_says_why() -> None:
    done = _run("import scancache.cache\n"
                "for name in ('no_such_module', '__wrapped__'):\n"
                "    try:\n"
                "        getattr(scancache.cache, name)\n"
                "    except AttributeError as exc:\n"
                "        print(type(exc).__name__, exc)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "AttributeError module 'scancache.cache' has no attribute 'no_such_module'",
        "AttributeError module 'scancache.cache' has no attribute '__wrapped__'"]
