"""The `scancache` command: argument parsing and dispatch to one module per command group.

Only argparse, os and sys are imported here, so `scancache --help` answers in a few tens of
milliseconds; each command's module (and with it httpx, dnspython, rich ...) is imported only when that
command runs. Every failure ends as one `scancache: error: ...` line on stderr and a non-zero exit
status (2 for usage and input errors); `-v` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FINDINGS", "EXIT_ERROR"]

EXIT_OK = 0
#: `audit` found a vulnerability; `resolve` could not resolve some name.
EXIT_FINDINGS = 1
#: Usage, input, configuration or backend error.
EXIT_ERROR = 2
_EXIT_INTERRUPTED = 130

_DESCRIPTION = (
    "Fast caches for security scanners: DNS answers, OSV/NVD vulnerability queries and lazy imports. "
    "Settings come from --config (TOML or YAML), then SCANCACHE_* variables, then these options."
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, as every other scancache error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)  # subparsers are made with this class too
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print `scancache: error: ...` (one line) and exit 2."""
        sys.stderr.write(f"scancache: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_ERROR)


class _Unparsed(Exception):
    """The one-command parser could not parse the command line: the full parser will say why."""


class _OneCommandParser(_Parser):
    """The parser of a run: only the command it names, and silent on errors (raises _Unparsed), so
    that the full parser, asked next, gives the message a user would get from it."""

    def error(self, message: str) -> NoReturn:
        """Raise _Unparsed (nothing printed)."""
        raise _Unparsed(message)


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal width: its own lookup imports shutil (with bz2, lzma
    and fnmatch) on every add_argument, a few ms of each run.

    argparse also makes one at every add_argument only to check the metavar (_format_args, which
    reads no state of the formatter): HelpFormatter's set-up (the width, two regexes compiled on a
    run's first one) waits until something else is asked of it, as help or a usage error does.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        self._set_up_with = (prog, indent_increment, max_help_position, width)

    def __getattr__(self, name: str) -> Any:
        arguments = self.__dict__.pop("_set_up_with", None)
        if arguments is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        prog, indent_increment, max_help_position, width = arguments
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)
        return getattr(self, name)


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {text!r}")
    return value


def _add_globals(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("global options")
    group.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                       help="TOML or YAML config file (default: $SCANCACHE_CONFIG, else none)")
    group.add_argument("--cache-type", choices=("memory", "disk", "redis", "hybrid"),
                       default=argparse.SUPPRESS,
                       help="where caches live (default: the config file's, else disk)")
    group.add_argument("--cache-dir", metavar="DIR", default=argparse.SUPPRESS,
                       help="directory of the disk cache (default: $SCANCACHE_CACHE_DIR, else the "
                            "user cache directory)")
    group.add_argument("--redis-url", metavar="URL", default=argparse.SUPPRESS,
                       help="Redis URL for redis/hybrid caches (default: $SCANCACHE_REDIS_URL)")
    group.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="log more; show tracebacks of errors")


def _add_progress(parser: argparse.ArgumentParser) -> None:
    """--progress, for the commands that draw a bar (by default only on a terminal)."""
    parser.add_argument("--progress", action="store_true",
                        help="show a progress bar on stderr even when it is not a terminal")


def _rdtype_list(text: str) -> list[str]:
    """Record types from "A,MX" or "65"; a usage error names one that is no record type."""
    from scancache.dns.rdtypes import canonical_rdtype

    try:
        return [canonical_rdtype(part)[0] for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_resolve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("resolve", help="resolve host names through the DNS cache",
                                 description="Resolve host names through the DNS cache, any record "
                                             "type, streaming one row a name as answers arrive. Exit "
                                             "status 1 when some name could not be resolved or a "
                                             "line of the input was bad.")
    parser.add_argument("names", nargs="*", metavar="NAME", help="host names to resolve")
    parser.add_argument("-i", "--input", metavar="FILE",
                        help="read names from FILE, one a line ('-' for stdin; '#' starts a comment)")
    parser.add_argument("--ptr", action="append", metavar="CIDR",
                        help="reverse-resolve (PTR) every address of CIDR (repeatable)")
    parser.add_argument("--format", choices=("jsonl", "table"), default="jsonl",
                        help="JSON lines (default, in completion order) or a table (in input order)")
    parser.add_argument("--concurrency", type=_positive_int, default=64,
                        help="lookups in flight at once (default 64)")
    parser.add_argument("--nameserver", action="append", metavar="IP[:PORT]",
                        help="DNS server to ask (repeatable; default: config, else the system's)")
    parser.add_argument("-t", "--rdtype", type=_rdtype_list, action="append", metavar="TYPE[,TYPE]",
                        help="record types to ask: A, AAAA, CNAME, NS, MX, TXT, SOA, SRV, CAA, PTR, "
                             "HTTPS, SVCB or any by number (65, TYPE65); repeatable "
                             "(default: A and AAAA as one answer)")
    parser.add_argument("--resume", metavar="STATE",
                        help="record progress in STATE; run again with it to continue an "
                             "interrupted run without asking finished names again")
    parser.add_argument("--resolvers", metavar="FILE",
                        help="a pool of resolvers, one ip[:port] a line: lookups spread by health "
                             "score, a failed one retried on another resolver")
    parser.add_argument("--trusted", action="append", metavar="IP[:PORT]",
                        help="with --resolvers: re-check every positive answer with this resolver "
                             "before it is cached (repeatable)")
    parser.add_argument("--rate-limit", type=_positive_float, metavar="QPS",
                        help="with --resolvers: queries per second for the whole pool")
    parser.add_argument("--resolver-rate-limit", type=_positive_float, metavar="QPS",
                        help="with --resolvers: queries per second to each resolver")
    parser.add_argument("--wildcards", action="store_true",
                        help="check each answer against its parent zone's wildcard (a few random "
                             "labels asked once per zone): rows say \"wildcard\": true or false "
                             "(null when not checked)")
    parser.add_argument("--filter-wildcards", action="store_true",
                        help="as --wildcards, and leave out the answers the wildcard explains")
    _add_progress(parser)
    parser.set_defaults(module="resolve")


def _add_audit(commands: argparse._SubParsersAction) -> None:
    formats = ("table", "json", "pip-audit-json", "cyclonedx-json", "sarif", "markdown")
    inputs = ("requirements", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock", "pylock.toml",
              "pyproject.toml", "cyclonedx", "installed")
    parser = commands.add_parser("audit", help="audit a project's dependencies against OSV",
                                 description="Audit a project's dependencies against OSV (cached): "
                                             "a requirements or lock file, pyproject.toml, a "
                                             "CycloneDX SBOM or an installed environment; with no "
                                             "FILE, the project in the current directory. Exit "
                                             "status 0 when clean, 1 when anything is vulnerable, "
                                             "2 on errors.")
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="input file (format from its name) or project directory")
    parser.add_argument("-r", "--requirement", metavar="FILE",
                        help="requirements file ('-' for stdin)")
    parser.add_argument("--format-in", choices=inputs, metavar="FORMAT",
                        help="read FILE as FORMAT (" + ", ".join(inputs) + ")")
    parser.add_argument("--path", action="append", metavar="DIR",
                        help="audit the distributions installed in DIR (repeatable)")
    parser.add_argument("--format", choices=formats, default="table",
                        help="report on stdout: " + ", ".join(formats) + " (default table)")
    parser.add_argument("-o", "--output", action="append", metavar="FORMAT=PATH",
                        help="also write the report in FORMAT to PATH (repeatable)")
    parser.add_argument("--mirror", metavar="FILE",
                        help="answer offline from this mirror (made by 'scancache mirror import')")
    parser.add_argument("--osv-url", metavar="URL", help="OSV API base (default: $SCANCACHE_OSV_URL)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="accept an input with no auditable package (else exit 2)")
    parser.add_argument("--allow-invalid", action="store_true",
                        help="accept entries skipped as invalid (a lock version that is not PEP 440, "
                             "a line that does not parse; else exit 2)")
    parser.add_argument("--concurrency", type=_positive_int, metavar="N",
                        help="OSV requests in flight at once (default: the config's osv_concurrency, 200)")
    parser.add_argument("--ignore-vuln", action="append", metavar="ID",
                        help="ignore this advisory (or any of its aliases; repeatable)")
    parser.add_argument("--ignore-until-fixed", action="append", metavar="ID",
                        help="ignore this advisory while no fixed version exists (repeatable)")
    parser.add_argument("--fail-on", choices=("low", "medium", "high", "critical"),
                        help="exit 1 only for findings at or above this severity (unknown fails)")
    parser.add_argument("--baseline", metavar="OLD.json",
                        help="report and fail only on findings not in this earlier JSON report")
    parser.add_argument("--fix", action="store_true",
                        help="raise vulnerable pins in requirements files to their fixing version")
    parser.add_argument("--dry-run", action="store_true", help="with --fix: print the diff only")
    _add_progress(parser)
    parser.set_defaults(module="audit")


def _add_mirror(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("mirror", help="keep an offline OSV mirror",
                                 description="Import or update an offline OSV mirror from an OSV "
                                             "all.zip dump.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("import", "build the mirror from an OSV all.zip"),
                         ("update", "apply a newer OSV all.zip (only changed records)")):
        sub = actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("file", metavar="FILE", help="OSV all.zip (one JSON record per file)")
        sub.add_argument("--mirror-db", metavar="PATH",
                         help="mirror database (default: the config's mirror_path, else "
                              "CACHE_DIR/osv-mirror.sqlite3)")
    parser.set_defaults(module="mirror")


def _add_cache(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("cache", help="inspect, clear or warm the caches",
                                 description="Inspect, clear or warm the DNS and vulnerability caches.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = actions.add_parser("stats", help="print each cache's statistics",
                               description="Print each cache's statistics.")
    stats.add_argument("--format", choices=("json", "table"), default="table")
    clear = actions.add_parser("clear", help="remove every entry", description="Remove every entry.")
    for sub in (stats, clear):
        sub.add_argument("--only", choices=("dns", "vulndb"), help="just this cache")
    warm = actions.add_parser("warm", help="fill the caches ahead of a scan",
                              description="Fill the caches ahead of a scan.")
    warm.add_argument("--hosts", metavar="FILE", help="host names to resolve, one a line")
    warm.add_argument("-r", "--requirement", metavar="FILE", help="requirements file to query")
    warm.add_argument("--concurrency", type=_positive_int, default=64)
    warm.add_argument("--nameserver", action="append", metavar="IP[:PORT]")
    warm.add_argument("--osv-url", metavar="URL")
    parser.set_defaults(module="cache")


def _add_imports(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("imports", help="profile module imports",
                                 description="Profile module imports.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    profile = actions.add_parser("profile", help="import time and memory per module, as a tree",
                                 description="Import MODULEs in a fresh interpreter and show the time "
                                             "and memory each module (and what it imports) cost.")
    profile.add_argument("modules", nargs="+", metavar="MODULE")
    profile.add_argument("--format", choices=("tree", "json"), default="tree")
    profile.add_argument("--min-ms", type=float, default=1.0, metavar="MS",
                         help="summarise modules that took less than MS milliseconds (default 1)")
    profile.add_argument("--depth", type=_positive_int, default=3,
                         help="levels of the tree to show (default 3)")
    parser.set_defaults(module="imports")


def _add_bench(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="measure the seed's performance claims on this machine",
                                 description="Start loopback DNS and OSV servers, run a scan cold and "
                                             "warm, start an app eager and lazy, and print the seed's "
                                             "performance claims next to what this machine measured. "
                                             "Uses the embedded defaults (memory + SQLite in a "
                                             "temporary directory, under --cache-dir if given), not "
                                             "the config file; --cache-type and --redis-url apply.")
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--hosts", type=_positive_int, metavar="N", help="distinct host names to scan")
    parser.add_argument("--packages", type=_positive_int, metavar="M", help="pinned packages to audit")
    parser.add_argument("--osv-data", metavar="ZIP", help="OSV all.zip to serve (default: built in)")
    _add_progress(parser)
    parser.set_defaults(module="bench")


def _add_metrics(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("metrics", help="print or serve Prometheus metrics",
                                 description="Print the caches' and loader's metrics in the Prometheus "
                                             "text format, or serve them on 127.0.0.1:PORT/metrics.")
    parser.add_argument("--serve", type=_port, metavar="PORT",
                        help="serve /metrics on 127.0.0.1:PORT until Ctrl-C")
    parser.add_argument("--format", choices=("prometheus", "json"), default="prometheus")
    parser.set_defaults(module="metrics_cmd")


def _add_dashboard(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dashboard", help="serve a live dashboard and REST API for the caches",
        description="Serve a live page (charts, once a second) and a REST API for the DNS and "
                    "vulnerability caches on 127.0.0.1:PORT; with the caches on Redis, every worker "
                    "sharing them too. Binding elsewhere needs --host and a token. Needs the "
                    "'dashboard' extra.")
    parser.add_argument("--port", type=_port, default=8050, metavar="P",
                        help="port to listen on (default 8050; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; anything else needs a token)")
    parser.add_argument("--token", help="token every request must carry (default: "
                                        "$SCANCACHE_DASHBOARD_TOKEN; at least 16 characters)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between two samples (default 1)")
    parser.set_defaults(module="dashboard")


#: Each command and what adds its subparser, in the order --help lists them.
_COMMANDS = {"resolve": _add_resolve, "audit": _add_audit, "mirror": _add_mirror, "cache": _add_cache,
             "imports": _add_imports, "bench": _add_bench, "metrics": _add_metrics,
             "dashboard": _add_dashboard}
#: The global options that take a value (the others: -v, --verbose).
_GLOBAL_VALUE_OPTIONS = ("--config", "--cache-type", "--cache-dir", "--redis-url")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full argument parser, or with command, one that knows only that command (what a run
    needs: the eight commands' options take ~8 ms to build). Cheap: no command module is imported."""
    parser_class = _Parser if command is None else _OneCommandParser
    parser = parser_class(prog="scancache", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"scancache {_version()}")
    _add_globals(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add in _COMMANDS.items():
        if command is None or name == command:
            add(commands)
    # Global options are accepted after the command too (`scancache resolve --cache-dir D x`).
    for sub in commands.choices.values():
        _add_globals(sub)
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for action in nested:
            for leaf in action.choices.values():
                _add_globals(leaf)
    return parser


def _version() -> str:
    from scancache import __version__

    return __version__


def _normalise(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the global options that neither position gave with their defaults."""
    from scancache.env import config_path

    defaults = {"config": config_path(), "cache_type": None,
                "cache_dir": None, "redis_url": None, "verbose": 0}
    for name, value in defaults.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def _configure_logging(verbose: int) -> None:
    """-v: scancache's log on stderr; without it, its warnings are collected and summed up in one
    line at the end (a failing cache backend degrades a run, it does not flood the terminal), and
    other libraries' warnings are hidden (their errors shown).

    Without -v nothing is imported now: the set-up runs when logging is first imported, by a
    scancache logger or by any library (none can log before that), so a run that logs nothing (a
    warm audit) never pays for importing logging.
    """
    from scancache.cli._common import WARNINGS

    WARNINGS.messages.clear()
    if verbose:
        import logging

        level = logging.INFO if verbose == 1 else logging.DEBUG
        logging.basicConfig(level=level, stream=sys.stderr, format=_LOG_FORMAT)
        return
    from scancache._log import setup_on_import

    setup_on_import(_collect_warnings)


_LOG_FORMAT = "scancache: %(levelname)s: %(name)s: %(message)s"


def _collect_warnings() -> None:
    """Without -v: other libraries log errors only; scancache's warnings go to WARNINGS."""
    import logging

    from scancache.cli._common import WARNINGS

    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format=_LOG_FORMAT)
    ours = logging.getLogger("scancache")
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    handler = WARNINGS.handler()
    if handler not in ours.handlers:  # main() may run more than once in one process
        ours.addHandler(handler)


#: Modules that the commands' imports import but a run seldom uses (each checked by a warm audit,
#: whose instructions it cuts): dataclasses imports inspect (with ast, dis, tokenize: ~6 %) to write
#: docstrings no scancache class needs, and copy for asdict(); urllib.parse imports ipaddress
#: (~1.5 %) for URLs with a [bracketed] host.
_SELDOM_USED = ("inspect", "ipaddress", "copy")


def _defer_seldom_used() -> None:
    """Let _SELDOM_USED modules run their code on first use, not when imported (scancache._deferred);
    nothing changes for one already imported (a test runner, a program calling main())."""
    from scancache._deferred import defer

    for name in _SELDOM_USED:
        defer(name)


def _report_warnings() -> None:
    from scancache.cli._common import WARNINGS

    if WARNINGS.messages:
        count = len(WARNINGS.messages)
        first = " ".join(WARNINGS.messages[0].split())
        sys.stderr.write(f"scancache: warning: {count} problem(s) logged, the first: {first} "
                         f"(-v shows them all)\n")


def _fail(message: str, verbose: int, code: int = EXIT_ERROR) -> int:
    from scancache.cache.urls import redact_text

    if verbose:
        import traceback

        # The traceback quotes exception texts (and a client library's) whole: redact their URLs.
        sys.stderr.write(redact_text(traceback.format_exc()))

    # One line, whatever the message, and never a URL's credentials.
    text = " ".join(redact_text(str(message)).split()) or "unknown error"
    sys.stderr.write(f"scancache: error: {text}\n")
    return code


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}:{where}" if where else exc.strerror
    text = str(exc)
    return text if text else type(exc).__name__


def _command_named(argv: Sequence[str]) -> str | None:
    """The command argv runs when only global options (spelled out in full) come before it; None
    otherwise (--help, --version, an abbreviation, an unknown word: the full parser decides)."""
    tokens = iter(argv)
    for token in tokens:
        if token in _COMMANDS:
            return token
        if token in _GLOBAL_VALUE_OPTIONS:
            next(tokens, None)  # its value, which may spell a command
        elif not (token.startswith(tuple(f"{option}=" for option in _GLOBAL_VALUE_OPTIONS))
                  or token == "--verbose" or (len(token) > 1 and token.strip("v") == "-")):
            return None
    return None


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """argv parsed by a parser of the one command it names (cheaper to build); by the full parser
    when it names none or that parser cannot parse it (the full one then reports the error).
    argparse's own messages are looked up as _argparse_messages() says, for this call only."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_named(argv)
    translate = argparse._  # type: ignore[attr-defined]
    argparse._ = _argparse_messages(translate)  # type: ignore[attr-defined]
    try:
        if command is not None:
            try:
                return build_parser(command).parse_args(argv)
            except _Unparsed:
                pass
        return build_parser().parse_args(argv)
    finally:
        argparse._ = translate  # type: ignore[attr-defined]


def _as_given(message: str) -> str:
    """message untranslated: what gettext.gettext returns when no catalog exists."""
    return message


def _argparse_messages(translate: Any) -> Any:
    """How argparse should translate its messages ("options", "usage: ", its errors) in this run:
    not at all when no message catalog can exist, else as it does (translate, gettext.gettext).

    gettext.gettext looks for a catalog of the domain "messages" in sys.base_prefix/share/locale
    (unless a program bound another domain or directory) on every call: a parser makes six calls,
    stat()s for each language of $LANG and imports the locale module for it (~1 ms of a warm audit,
    start-up is most of it). When that directory does not exist and nothing was bound, every
    message comes back unchanged, so the same text is had without the look-up.
    """
    import gettext

    if translate is not gettext.gettext:
        return translate  # someone chose another function: theirs stands
    default_dir = getattr(gettext, "_default_localedir", None)
    if (getattr(gettext, "_current_domain", None) == "messages"
            and getattr(gettext, "_localedirs", None) == {}
            and isinstance(default_dir, str) and not os.path.isdir(default_dir)):
        return _as_given
    return translate


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scancache command with argv (default sys.argv[1:]); returns the exit status."""
    try:
        args = _normalise(_parse(argv))
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    verbose = int(args.verbose or 0)
    import importlib

    from scancache.errors import ScancacheError

    try:
        _configure_logging(verbose)
        _defer_seldom_used()
        module = importlib.import_module(f"scancache.cli.{args.module}")
        try:
            code = int(module.run(args))
        finally:
            sys.stdout.flush()
        if not verbose:
            _report_warnings()
        return code
    except KeyboardInterrupt:
        return _fail("interrupted", verbose, _EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`scancache resolve ... | head`): stop quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR  # never 1: for audit that means "vulnerable"
    except (ScancacheError, ValueError, OSError, ImportError, LookupError) as exc:
        code = getattr(exc, "exit_code", EXIT_ERROR)
        return _fail(_describe(exc), verbose, code)
    except Exception as exc:  # a bug: still one line, the traceback with -v
        return _fail(f"internal error: {type(exc).__name__}: {exc}", verbose)


if __name__ == "__main__":
    raise SystemExit(main())
