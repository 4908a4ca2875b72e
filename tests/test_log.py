"""scancache._log: loggers that import logging on first use, and a set-up run when logging is imported.

Subprocesses where the question is what a fresh interpreter imports (pytest itself imports logging).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from scancache._log import get_logger, setup_on_import


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=True)


def test_a_logger_that_only_debugs_never_imports_logging() -> None:
    out = _run("""
        import sys
        from scancache._log import get_logger
        log = get_logger("scancache.test")
        log.debug("quiet %s", 1)
        log.info("quiet %s", 2)
        print("logging" in sys.modules)
    """)
    assert out.stdout.strip() == "False"
    assert out.stderr == ""


def test_a_warning_imports_logging_and_is_logged_as_by_a_plain_logger() -> None:
    out = _run("""
        import sys
        from scancache._log import get_logger
        get_logger("scancache.test").warning("disk %s failed", "cache")
        print("logging" in sys.modules)
    """)
    assert out.stdout.strip() == "True"
    assert out.stderr == "disk cache failed\n"  # logging's last-resort handler, unconfigured


def test_records_name_their_caller_not_the_stand_in() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    real = logging.getLogger("scancache.test.caller")
    real.addHandler(handler)
    try:
        get_logger("scancache.test.caller").warning("from here")
    finally:
        real.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["from here"]
    assert records[0].pathname == __file__
    assert records[0].funcName == "test_records_name_their_caller_not_the_stand_in"


def test_the_set_up_runs_once_right_after_anyone_imports_logging() -> None:
    out = _run("""
        import sys
        from scancache._log import setup_on_import
        setup_on_import(lambda: print("set up, root handlers:", len(sys.modules["logging"].root.handlers)))
        print("before")
        import logging  # as asyncio or an HTTP client would
        import importlib.machinery as m
        print("loader restored:", type(logging.__spec__.loader) is m.SourceFileLoader,
              type(logging.__loader__) is m.SourceFileLoader)
        print("hook gone:", not any(type(f).__name__ == "_AfterLoggingImport" for f in sys.meta_path))
        logging.getLogger("x").warning("after")
    """)
    assert out.stdout.splitlines() == ["before", "set up, root handlers: 0", "loader restored: True True",
                                       "hook gone: True"]


def test_the_set_up_runs_before_a_scancache_logger_logs() -> None:
    out = _run("""
        from scancache._log import get_logger, setup_on_import
        def setup():
            import logging
            logging.basicConfig(level=logging.ERROR, format="configured: %(name)s: %(message)s")
        setup_on_import(setup)
        get_logger("scancache.test").warning("hidden: below ERROR")
        get_logger("scancache.test").error("shown")
    """)
    assert out.stderr == "configured: scancache.test: shown\n"


def test_with_logging_already_imported_the_set_up_runs_at_once() -> None:
    ran: list[int] = []
    setup_on_import(lambda: ran.append(1))
    assert ran == [1]
    assert not any(type(f).__name__ == "_AfterLoggingImport" for f in sys.meta_path)
