"""What the CLI itself (main.py, _common.py, the settings) costs a warm audit, and that the savings
keep behaviour: logging is imported only when something logs, yet the one-line warning summary and
-v still work; only the settings sections a command uses are built.

Subprocesses (a fresh interpreter is the only honest answer to "what does a run import"); no timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scancache.testing.osv_server import OSVTestServer

#: Modules the CLI's own code no longer imports on a warm, clean audit (other areas' modules have
#: their own guards in test_audit_startup.py): logging (nothing is logged), the settings of the DNS
#: and lazy-loading sections, scancache.config (the CLI layers settings with scancache._settings)
#: and what inspect imports (dataclasses imports inspect, whose code the CLI defers to its first use:
#: none here). locale (argparse's catalog look-up) has its own test below: it depends on the Python.
CLI_NOT_ON_A_WARM_RUN = ("logging", "traceback", "scancache.config", "scancache.dns.config",
                         "scancache.lazyload.config", "scancache.dns", "scancache.lazyload", "ast", "dis",
                         "tokenize", "linecache")


REQUIREMENTS = "jinja2==3.1.6\nrequests==2.32.3\nidna==3.10\n"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}


def _audit(requirements: Path, server: OSVTestServer, cache_dir: Path, *options: str,
           importtime: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "scancache",
               *options, "audit", "-r", str(requirements), "--osv-url", server.url,
               "--cache-dir", str(cache_dir)]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=60, check=False)


def _imported(done: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.fixture
def warm(osv_server: OSVTestServer, tmp_path: Path) -> tuple[Path, Path]:
    """(requirements, cache dir) after one cold audit: the next run is answered by the cache."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(REQUIREMENTS, encoding="utf-8")
    cold = _audit(requirements, osv_server, tmp_path / "cache")
    assert cold.returncode == 0, cold.stderr
    osv_server.reset_counts()
    return requirements, tmp_path / "cache"


def test_a_warm_clean_audit_does_not_import_logging(osv_server: OSVTestServer,
                                                     warm: tuple[Path, Path]) -> None:
    requirements, cache_dir = warm
    done = _audit(requirements, osv_server, cache_dir, importtime=True)
    assert done.returncode == 0, done.stderr
    assert osv_server.total_requests == 0
    imported = _imported(done)
    assert "scancache.vulndb.audit" in imported  # the listing is real
    assert sorted(m for m in imported if m in CLI_NOT_ON_A_WARM_RUN) == []
    assert [line for line in done.stderr.splitlines() if not line.startswith("import time:")] == []


def test_a_backend_failure_during_a_run_still_ends_in_the_one_line_summary(
        osv_server: OSVTestServer, warm: tuple[Path, Path]) -> None:
    requirements, cache_dir = warm
    databases = sorted(cache_dir.glob("*.sqlite3"))
    assert databases
    for database in databases:  # not a SQLite file any more: moved aside with a warning
        database.write_bytes(b"this is not a database" * 100)
    done = _audit(requirements, osv_server, cache_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("scancache: warning: 1 problem(s) logged, the first: cache file ")
    assert "is not a usable SQLite database" in lines[0] and lines[0].endswith("(-v shows them all)")


def test_with_v_the_same_failure_is_logged_as_it_happens(osv_server: OSVTestServer,
                                                         warm: tuple[Path, Path]) -> None:
    requirements, cache_dir = warm
    for database in cache_dir.glob("*.sqlite3"):
        database.write_bytes(b"this is not a database" * 100)
    done = _audit(requirements, osv_server, cache_dir, "-v")
    assert done.returncode == 0, done.stderr
    assert "scancache: WARNING: scancache.cache.sqlite: cache file " in done.stderr
    assert "problem(s) logged" not in done.stderr


def test_without_v_other_libraries_warnings_stay_hidden_and_errors_show() -> None:
    # The set-up that main() asks for (without -v) runs when anything first imports logging: here a
    # library, after it.
    code = """
import sys
from scancache.cli.main import _configure_logging
_configure_logging(0)
print("logging imported by the set-up:", "logging" in sys.modules, flush=True)
import logging
logging.getLogger("some.library").warning("a library's warning")
logging.getLogger("some.library").error("a library's error")
logging.getLogger("scancache.test").warning("collected, not printed")
from scancache.cli._common import WARNINGS
print(WARNINGS.messages)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                          timeout=60, check=True)
    assert done.stdout.splitlines()[-2:] == ["logging imported by the set-up: False",
                                             "['collected, not printed']"]
    assert done.stderr == "scancache: ERROR: some.library: a library's error\n"


def _mo_catalog(translations: dict[str, str]) -> bytes:
    """A GNU gettext .mo file holding translations (what msgfmt writes, without a hash table)."""
    import struct

    keys = sorted(translations)
    originals = b"".join(k.encode() + b"\0" for k in keys)
    translated = b"".join(translations[k].encode() + b"\0" for k in keys)
    header = 7 * 4
    table = header + 16 * len(keys)
    entries, offset = [], table
    for k in keys:
        entries.append((len(k.encode()), offset))
        offset += len(k.encode()) + 1
    trans_entries = []
    for k in keys:
        trans_entries.append((len(translations[k].encode()), offset))
        offset += len(translations[k].encode()) + 1
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), header, header + 8 * len(keys), 0, 0)
    out += b"".join(struct.pack("<2I", *e) for e in entries)
    out += b"".join(struct.pack("<2I", *e) for e in trans_entries)
    return out + originals + translated


def test_argparse_messages_are_still_translated_when_a_catalog_exists(tmp_path: Path) -> None:
    catalog = tmp_path / "xx" / "LC_MESSAGES" / "messages.mo"
    catalog.parent.mkdir(parents=True)
    catalog.write_bytes(_mo_catalog({"options": "OPTIONEN", "usage: ": "AUFRUF: "}))
    code = f"""
import gettext
gettext.bindtextdomain("messages", {str(tmp_path)!r})
from scancache.cli.main import main
main(["audit", "--help"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**_env(), "LANGUAGE": "xx", "COLUMNS": "100"}, timeout=60, check=False)
    assert done.stdout.startswith("AUFRUF: scancache audit"), done.stdout[:200]
    assert "\nOPTIONEN:\n" in done.stdout


def test_without_a_catalog_a_run_does_not_look_for_one() -> None:
    if os.path.isdir(os.path.join(sys.base_prefix, "share", "locale")):
        pytest.skip("this Python has a message catalog directory: argparse looks there, as it should")
    code = """
import sys
from scancache.cli.main import _parse
_parse(["audit", "-r", "x.txt", "--format", "json"])
print("locale" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**_env(), "LANG": "de_DE.UTF-8"}, timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_a_warm_clean_audit_never_runs_the_modules_it_defers(osv_server: OSVTestServer,
                                                            warm: tuple[Path, Path]) -> None:
    requirements, cache_dir = warm
    code = f"""
import sys
from scancache.cli.main import _SELDOM_USED, main
code = main(["audit", "-r", {str(requirements)!r}, "--osv-url", {osv_server.url!r},
             "--cache-dir", {str(cache_dir)!r}])
print(code, {{name: type(sys.modules.get(name)).__name__ for name in _SELDOM_USED}})
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                          timeout=60, check=True)
    assert osv_server.total_requests == 0
    assert done.stdout.splitlines()[-1] == ("0 {'inspect': '_Deferred', 'ipaddress': '_Deferred', "
                                            "'copy': '_Deferred'}")
