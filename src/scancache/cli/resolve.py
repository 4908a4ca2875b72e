"""`scancache resolve NAME... | -i FILE`: resolve host names through the DNS cache."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from scancache.cli._common import (
    CommandError,
    format_table,
    load_settings,
    progress,
    progress_wanted,
    read_lines,
)
from scancache.cli._components import open_dns, validate_names

__all__ = ["run", "collect_names", "resolve_names"]

#: Runs with at least this many names draw a progress bar on a terminal (short ones finish at once).
PROGRESS_MIN_NAMES = 50


def collect_names(args: argparse.Namespace) -> list[str]:
    """The names from the command line and -i FILE, checked, each name once."""
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


def _jsonl(name: str, result: Any) -> str:
    if isinstance(result, list):
        return json.dumps({"name": name, "addresses": result})
    return json.dumps({"name": name, "error": getattr(result, "reason", str(result))})


def _table(names: list[str], results: dict[str, Any]) -> str:
    """One row a name, in input order: its addresses or its error."""
    rows = [("NAME", "ADDRESSES")]
    for name in names:
        result = results.get(name)
        if isinstance(result, list):
            text = ", ".join(result) if result else "(no addresses)"
        else:
            text = f"error: {getattr(result, 'reason', result)}"
        rows.append((name, text))
    return "\n".join(format_table(rows))


async def _run(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    settings = load_settings(args)
    dns = open_dns(settings, args.nameserver)
    show = progress_wanted(args) and (args.progress or len(names) >= PROGRESS_MIN_NAMES)

    def stream(name: str, result: Any) -> None:
        sys.stdout.write(_jsonl(name, result) + "\n")

    try:
        return await resolve_names(dns, names, concurrency=args.concurrency, rdtype=args.rdtype,
                                   show_progress=show,
                                   on_result=stream if args.format == "jsonl" else None)
    finally:
        await dns.aclose()


def run(args: argparse.Namespace) -> int:
    """Resolve every name; exit 1 when some name could not be resolved (its error is in the output)."""
    names = collect_names(args)
    results = asyncio.run(_run(args, names))
    if args.format == "table":
        print(_table(names, results))
    failed = [n for n, r in results.items() if not isinstance(r, list)]
    return 1 if failed else 0
