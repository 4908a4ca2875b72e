"""`scancache resolve NAME... | -i FILE`: resolve host names through the DNS cache.

Every name gets one output row: its status (NOERROR, NXDOMAIN, SERVFAIL, ...), its records with
TTLs, the resolver that answered and whether the cache did. A bad line in -i FILE is reported with
its line number and skipped; the run goes on and exits 1 at the end, so no input is silently lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

from scancache.cli._common import (
    CommandError,
    format_table,
    load_settings,
    progress,
    progress_wanted,
    read_lines,
    read_text,
)
from scancache.cli._components import open_dns, validate_names

__all__ = ["run", "collect_names", "resolve_names", "numbered_names"]

#: Runs with at least this many names draw a progress bar on a terminal (short ones finish at once).
PROGRESS_MIN_NAMES = 50


def numbered_names(path: str) -> Iterator[tuple[int, str]]:
    """(line number, name) for each meaningful line of path: stripped, no blanks or '#' comments."""
    text = read_text(path, "names file")
    for number, line in enumerate(text.splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if name:
            yield number, name


class _Invalid:
    """A name that failed validation: reported in the output, never sent anywhere."""

    def __init__(self, name: str, reason: str, where: str) -> None:
        self.name, self.reason, self.where = name, reason, where

    def row(self) -> dict[str, Any]:
        return {"host": self.name, "status": "INVALID", "error": f"{self.where}: {self.reason}"}


def checked_names(args: argparse.Namespace) -> tuple[list[str], list[_Invalid]]:
    """(valid names, each once, first spelling kept; invalid lines of -i FILE with line numbers).

    A bad name on the command line is a usage error (exit 2, nothing sent); a bad line in a file is
    reported and skipped, so one typo in a million-line list does not stop the run.
    """
    from scancache.dns.names import ip_literal, normalise_name

    names = validate_names(list(args.names)) if args.names else []
    invalid: list[_Invalid] = []
    if args.input:
        seen = {ip_literal(n) or normalise_name(n) for n in names}
        source = "<stdin>" if args.input == "-" else args.input
        for number, name in numbered_names(args.input):
            try:
                key = ip_literal(name) or normalise_name(name)
            except ValueError as exc:
                invalid.append(_Invalid(name, str(exc), f"{source}:{number}"))
                continue
            if key not in seen:
                seen.add(key)
                names.append(name)
    if not names and not invalid:
        raise CommandError("no names to resolve (give NAME... or -i FILE)")
    return names, invalid


def collect_names(args: argparse.Namespace) -> list[str]:
    """The names from the command line and -i FILE, checked, each name once (CommandError if bad)."""
    names = list(args.names)
    if args.input:
        names += read_lines(args.input, "names file")
    if not names:
        raise CommandError("no names to resolve (give NAME... or -i FILE)")
    return validate_names(names)


async def resolve_names(dns: Any, names: list[str], *, concurrency: int, rdtype: str | None,
                        show_progress: bool, on_result: Any = None) -> dict[str, Any]:
    """{name: addresses | DNSError} for names; on_result(name, result) is called as each arrives."""
    results: dict[str, Any] = {}
    with progress(show_progress, "resolving", len(names)) as bar:
        async for name, result in dns.resolve_many(names, concurrency=concurrency, rdtype=rdtype):
            results[name] = result
            if on_result is not None:
                on_result(name, result)
            bar.advance()
    return results


def _row(name: str, result: Any, rdtype: str | None) -> dict[str, Any]:
    """The JSON object of one name: a DNSResult's, or its error's (status SERVFAIL, TIMEOUT ...)."""
    if isinstance(result, _Invalid):
        return result.row()
    if hasattr(result, "as_dict"):
        return result.as_dict()
    reason = getattr(result, "reason", str(result))
    status = reason if reason in ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP") else "ERROR"
    if reason == "timeout":
        status = "TIMEOUT"
    return {"host": name, "type": rdtype or "A,AAAA", "status": status, "error": reason}


def _table(rows: list[dict[str, Any]]) -> str:
    """One row a name, in input order: status and answers (or the error)."""
    lines = [("NAME", "STATUS", "ANSWERS")]
    for row in rows:
        if "error" in row:
            text = f"error: {row['error']}"
        else:
            text = ", ".join(a["data"] for a in row["answers"]) or "(no records)"
        lines.append((row["host"], row["status"], text))
    return "\n".join(format_table(lines))


async def _run(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    settings = load_settings(args)
    dns = open_dns(settings, args.nameserver)
    show = progress_wanted(args) and (args.progress or len(names) >= PROGRESS_MIN_NAMES)
    results: dict[str, Any] = {}
    jsonl = args.format == "jsonl"
    write = sys.stdout.write
    try:
        with progress(show, "resolving", len(names)) as bar:
            async for name, result in dns.query_many(names, concurrency=args.concurrency,
                                                     rdtype=args.rdtype):
                if jsonl:
                    write(json.dumps(_row(name, result, args.rdtype)) + "\n")
                    results[name] = not hasattr(result, "as_dict")  # only whether it failed
                else:
                    results[name] = result
                bar.advance()
    finally:
        await dns.aclose()
    return results


def run(args: argparse.Namespace) -> int:
    """Resolve every name; exit 1 when some name could not be resolved or a line of -i FILE was bad
    (each is in the output and, for bad lines, on stderr with its line number)."""
    names, invalid = checked_names(args)
    for bad in invalid:
        print(f"scancache: warning: {bad.where}: bad host name {bad.name!r}: {bad.reason}",
              file=sys.stderr)
    results = asyncio.run(_run(args, names)) if names else {}
    if args.format == "table":
        rows = [_row(name, results[name], args.rdtype) for name in names]
        print(_table(rows + [bad.row() for bad in invalid]))
        failed = any("error" in row for row in rows)
    else:
        for bad in invalid:
            sys.stdout.write(json.dumps(bad.row()) + "\n")
        failed = any(results.values())
    return 1 if failed or invalid else 0
