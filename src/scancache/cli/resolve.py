"""`scancache resolve NAME... | -i FILE | --ptr CIDR`: resolve through the DNS cache, streaming.

Every input name gets one row per record type asked: its status (NOERROR, NXDOMAIN, SERVFAIL,
REFUSED, TIMEOUT ...), its records with TTLs, the resolver that answered and whether the cache did.
Input is read lazily and rows are written as answers arrive, so memory depends on --concurrency,
not on the length of the input (duplicates are recognised by a 16-byte hash per name, see
scancache.dns.seen). A bad line in -i FILE is reported with its line number and skipped; the run
goes on and exits 1 at the end, so no input is silently lost. --format table waits for every
answer and prints them in input order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from scancache.cli._common import (
    CommandError,
    few_gc_passes,
    format_table,
    load_settings,
    progress,
    progress_wanted,
)
from scancache.cli._components import open_dns, validate_names
from scancache.cli._resolve_stream import ProgressMeter, ResumeState
from scancache.dns.names import MAX_NAME_LENGTH, NORMAL_NAME, ip_literal, normalise_name

__all__ = ["run", "resolve_names", "input_names"]

#: Runs with at least this many names draw progress on a terminal (short ones finish at once).
PROGRESS_MIN_NAMES = 50
_PTR_ONLY: list[str | None] = ["PTR"]  # what --ptr addresses are asked
_normal_name = NORMAL_NAME.match
_ERROR_STATUS = {"SERVFAIL": "SERVFAIL", "REFUSED": "REFUSED", "FORMERR": "FORMERR",
                 "NOTIMP": "NOTIMP", "timeout": "TIMEOUT"}


async def resolve_names(dns: Any, names: list[str], *, concurrency: int, rdtype: str | None,
                        show_progress: bool, on_result: Any = None) -> dict[str, Any]:
    """{name: addresses | DNSError} for names; on_result(name, result) is called as each arrives."""
    results: dict[str, Any] = {}
    with progress(show_progress, "resolving", len(names)) as bar:
        unshown = 0  # the bar moves every 256 results: a redraw per name would cost more than a hit
        async for name, result in dns.resolve_many(names, concurrency=concurrency, rdtype=rdtype):
            results[name] = result
            if on_result is not None:
                on_result(name, result)
            unshown += 1
            if unshown >= 256:
                bar.advance(unshown)
                unshown = 0
        bar.advance(unshown)
    return results


# ------------------------------------------------------------------ input
def _open_names(path: str) -> Any:
    """A text stream of path ('-' is stdin) that drops a UTF-8 BOM; CommandError if unreadable."""
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8-sig", errors="strict")
    except FileNotFoundError:
        raise CommandError(f"names file not found: {path}") from None
    except IsADirectoryError:
        raise CommandError(f"names file is a directory: {path}") from None
    except OSError as exc:
        raise CommandError(f"cannot read names file {path}: {exc.strerror or exc}") from None


def input_names(args: argparse.Namespace) -> Iterator[tuple[str | int, str]]:
    """(where, name) for every input in order: NAME arguments, -i FILE lines, --ptr addresses.

    where is "argument", "--ptr", or for a line of -i FILE its line number (where_text() makes
    "FILE:LINE" of it for error messages). File lines are read lazily.
    """
    for name in args.names:
        yield "argument", name
    if args.input:
        stream = _open_names(args.input)
        try:
            for number, line in enumerate(stream, 1):
                name = line.split("#", 1)[0].strip() if "#" in line else line.strip()
                if name:
                    yield number, name
        except UnicodeDecodeError:
            raise CommandError(f"names file is not UTF-8 text: {args.input}") from None
        finally:
            if stream is not sys.stdin:
                stream.close()
    for network in args.ptr or ():
        for address in _network(network):
            yield "--ptr", str(address)


def where_text(args: argparse.Namespace, where: str | int) -> str:
    """where from input_names() for people: a line number becomes "FILE:LINE" ("<stdin>:LINE")."""
    if isinstance(where, int):
        return f"{'<stdin>' if args.input == '-' else args.input}:{where}"
    return where


async def input_names_async(args: argparse.Namespace) -> AsyncIterator[tuple[str | int, str]]:
    """input_names() with -i - (stdin): stdin is read in a thread, a chunk at a time as it comes,
    so rows of the names already read are written while a pipe waits for more."""
    import codecs
    import os

    for name in args.names:
        yield "argument", name
    loop = asyncio.get_running_loop()
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    fd = sys.stdin.fileno()
    pending, number = "", 0
    while True:
        chunk = await loop.run_in_executor(None, os.read, fd, 1 << 16)
        try:
            pending += decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise CommandError("names on stdin are not UTF-8 text") from None
        *lines, pending = pending.split("\n") if chunk else (*pending.split("\n"), "")
        for line in lines:
            number += 1
            name = line.split("#", 1)[0].strip()
            if name:
                yield number, name
        if not chunk:
            break
    for network in args.ptr or ():
        for address in _network(network):
            yield "--ptr", str(address)


def _network(text: str) -> Any:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise CommandError(f"--ptr: {exc}") from None


def _count_inputs(args: argparse.Namespace) -> int | None:
    """How many input items there are (for progress), or None when stdin makes it unknown."""
    if args.input == "-":
        return None
    count = len(args.names) + sum(_network(n).num_addresses for n in args.ptr or ())
    if args.input:
        with _open_names(args.input) as stream:
            count += sum(1 for line in stream if line.split("#", 1)[0].strip())
    return count


# ------------------------------------------------------------------ output
def _row(name: str, result: Any, rdtype: str | None) -> dict[str, Any]:
    """The JSON object of one lookup: a DNSResult's, or its error's (status SERVFAIL, TIMEOUT...)."""
    if hasattr(result, "as_dict"):
        return result.as_dict()
    reason = getattr(result, "reason", str(result))
    status = _ERROR_STATUS.get(reason, "ERROR")
    return {"host": name, "type": rdtype or "A,AAAA", "status": status, "error": reason}


def _invalid_row(name: str, where: str, reason: str) -> dict[str, Any]:
    return {"host": name, "status": "INVALID", "error": f"{where}: {reason}"}


def _table(rows: list[dict[str, Any]]) -> str:
    """One line a row: name, type, status and answers (or the error)."""
    lines = [("NAME", "TYPE", "STATUS", "ANSWERS")]
    for row in rows:
        if "error" in row:
            text = f"error: {row['error']}"
        else:
            text = ", ".join(a["data"] for a in row["answers"]) or "(no records)"
        lines.append((row["host"], row.get("type", "-"), row["status"], text))
    return "\n".join(format_table(lines))


# ------------------------------------------------------------------ the run
class _Run:
    """One resolve run: input items in, rows out, failures counted, progress and state kept."""

    def __init__(self, args: argparse.Namespace) -> None:
        from scancache.dns.seen import SeenNames

        self.args = args
        self.types: list[str | None] = [t for group in args.rdtype for t in group] \
            if args.rdtype else [None]
        self.types = list(dict.fromkeys(self.types))
        signature = {"names": list(args.names), "input": args.input, "ptr": args.ptr or [],
                     "types": self.types}
        self.state = ResumeState(args.resume, signature)
        self.seen = SeenNames()
        self._seen_add = self.seen.add
        self.resumed = self.state.resumed
        self.table = args.format == "table"
        self.rows: dict[int, list[dict[str, Any]]] = {}  # table format only
        self.write = sys.stdout.write
        self.meter: ProgressMeter | None = None

    def _emit(self, seq: int, row: dict[str, Any]) -> None:
        if self.table:
            self.rows.setdefault(seq, []).append(row)
        else:
            self.write(json.dumps(row) + "\n")

    def items(self) -> Iterator[tuple[int, str, str | None]]:
        """(seq, name, rdtype) to look up: checked, each name once, finished ones skipped."""
        prepare, seen_add, issue, types = self._prepare, self._seen_add, self.state.issue, self.types
        first, lookups = types[0], len(types)
        plain = not self.resumed  # nothing to skip: the common line needs none of _prepare's checks
        for seq, (where, name) in enumerate(input_names(self.args), 1):
            if (plain and type(where) is int and len(name) <= MAX_NAME_LENGTH and _normal_name(name)
                    and seen_add(name)):  # a new, normal name from the file: _prepare's common case
                issue(seq, lookups)
                if lookups == 1:
                    yield seq, name, first
                else:
                    for rdtype in types:
                        yield seq, name, rdtype
            else:
                yield from prepare(seq, where, name)

    async def items_async(self) -> AsyncIterator[tuple[int, str, str | None]]:
        """items(), for input from stdin: read in a thread so the loop never waits for a pipe."""
        seq = 0
        async for where, name in input_names_async(self.args):
            seq += 1
            for item in self._prepare(seq, where, name):
                yield item

    def _prepare(self, seq: int, where: str | int, name: str) -> list[tuple[int, str, str | None]]:
        """The lookups of input item seq: none when it is finished, bad or a repeat."""
        state, types = self.state, self.types
        kinds = _PTR_ONLY if where == "--ptr" else types
        if self.resumed and state.finished_before(seq):
            state.issue(seq, 0)
            self._skip(len(kinds))
            return []
        if len(name) <= MAX_NAME_LENGTH and _normal_name(name):
            key = name  # already normal and no address: the common case, one regex match
        else:
            try:
                key = ip_literal(name) or normalise_name(name)
            except ValueError as exc:
                if where == "argument":  # a typo on the command line is a usage error
                    raise CommandError(f"bad host name {name!r}: {exc}") from None
                text = where_text(self.args, where)
                sys.stderr.write(f"scancache: warning: {text}: bad host name {name!r}: {exc}\n")
                self._emit(seq, _invalid_row(name, text, str(exc)))
                state.failures += 1
                state.issue(seq, 0)
                self._skip(len(kinds))
                return []
        if not self._seen_add(key if kinds is types else "ptr:" + key):
            state.issue(seq, 0)  # a repeat: answered once already
            self._skip(len(kinds))
            return []
        state.issue(seq, len(kinds))
        return [(seq, name, rdtype) for rdtype in kinds]

    def _skip(self, steps: int) -> None:
        if self.meter is not None:
            self.meter.advance(steps)

    async def run(self, dns: Any, meter: ProgressMeter) -> None:
        from scancache.dns.bulk import gathered_writes, split_answers, stream_batches

        self.meter = meter
        query, check, state = dns.query, dns.check_wildcard, self.state
        drop_wildcards = self.args.filter_wildcards
        detect = drop_wildcards or self.args.wildcards

        async def checked(item: tuple[int, str, str | None]) -> Any:
            result = await query(item[1], item[2])
            await check(result)
            return result

        def lookup(item: tuple[int, str, str | None]) -> Any:
            return query(item[1], item[2])

        # JSON rows come straight from the cached values (no DNSResult); a table needs the rows
        read_cached = dns.query_cached if self.table else dns.query_cached_json

        async def cached(batch: list[tuple[int, str, str | None]]) -> Any:
            """What the cache answers fresh for a batch, in one read (see dns/bulk.py)."""
            return split_answers(batch, await read_cached([(name, rdtype)
                                                           for _, name, rdtype in batch]))

        loop = asyncio.get_running_loop()
        ticker: list[asyncio.TimerHandle] = []

        def tick() -> None:  # saves progress while everything waits on slow answers, too
            state.save(force=True)
            ticker[:] = [loop.call_later(1.0, tick)]

        tick()
        source = self.items_async() if self.args.input == "-" else self.items()
        flush = sys.stdout.flush
        # Answers are stored in batches (one set_many) while the run goes on; see dns/bulk.py.
        async with gathered_writes(dns):
            try:
                batches = stream_batches(checked if detect else lookup, source, on_idle=flush,
                                         concurrency=self.args.concurrency,
                                         cached=None if detect else cached)
                async with contextlib.aclosing(batches):  # an error here cancels the lookups now
                    async for batch in batches:
                        self._write_rows(batch, drop_wildcards)
            finally:
                ticker[0].cancel()

    def _write_rows(self, batch: Sequence[tuple[tuple[int, str, str | None], Any]],
                    drop_wildcards: bool) -> None:
        """Rows of a batch of results, written at once; then their items are marked finished."""
        from scancache.dns.result import DNSResult

        state = self.state
        lines = []
        table = self.table
        for (seq, name, rdtype), result in batch:
            if type(result) is str:  # a cached answer's row (query_cached_json): the common one
                lines.append(result)
                continue
            if type(result) is DNSResult and not table:  # encoded directly
                if not (drop_wildcards and result.wildcard):
                    lines.append(result.as_json())
                continue
            row = _row(name, result, rdtype)
            if "error" in row:
                state.failures += 1
            if not (drop_wildcards and row.get("wildcard")):
                if table:
                    self.rows.setdefault(seq, []).append(row)
                else:
                    lines.append(json.dumps(row))
        if lines:
            lines.append("")
            self.write("\n".join(lines))
        for (seq, _, _), _ in batch:  # after the rows: a saved state never covers a row not written
            state.finished(seq)
        if self.meter is not None:
            self.meter.advance(len(batch))


def _open_pool(args: argparse.Namespace, settings: Any) -> Any:
    """A DNSCache over a ResolverPool of --resolvers FILE (with --trusted, rate limits)."""
    from scancache.cli._common import read_text
    from scancache.dns.cache import DNSCache
    from scancache.dns.pool import ResolverPool, read_resolvers

    try:
        resolvers = read_resolvers(read_text(args.resolvers, "resolvers file").splitlines())
        config = settings.dns
        pool = ResolverPool(resolvers, trusted=args.trusted, timeout_seconds=config.timeout_seconds,
                            attempts=config.attempts, resolver_rate=args.resolver_rate_limit,
                            rate=args.rate_limit)
    except ValueError as exc:
        raise CommandError(f"resolvers file {args.resolvers}: {exc}") from None
    return DNSCache(config, upstream=pool)


async def _resolve(run: _Run, meter: ProgressMeter) -> None:
    settings = load_settings(run.args)
    args = run.args
    if args.resolvers:
        dns = _open_pool(args, settings)
    elif args.trusted or args.rate_limit or args.resolver_rate_limit:
        raise CommandError("--trusted, --rate-limit and --resolver-rate-limit need --resolvers FILE")
    else:
        dns = open_dns(settings, args.nameserver)
    try:
        await run.run(dns, meter)
    finally:
        await dns.aclose()


def run(args: argparse.Namespace) -> int:
    """Resolve every input; exit 1 when some lookup failed or an input line was bad (each is in the
    output, bad lines also on stderr with their line number)."""
    if not args.names and not args.input and not args.ptr:
        raise CommandError("no names to resolve (give NAME..., -i FILE or --ptr CIDR)")
    if args.names:
        validate_names(list(args.names))  # a typo on the command line: usage error, nothing sent
    job = _Run(args)
    if job.state.complete:
        sys.stderr.write(f"scancache: {args.resume}: this run is already complete\n")
        return 1 if job.state.failures else 0
    wanted = progress_wanted(args)
    total = _count_inputs(args) if wanted else None
    show = wanted and (args.progress or total is None or total >= PROGRESS_MIN_NAMES)
    meter = ProgressMeter(show, None if total is None else total * len(job.types))
    complete = False
    try:
        with few_gc_passes():
            asyncio.run(_resolve(job, meter))
        complete = True
    finally:
        meter.close()
        job.state.save(complete=complete, force=True)
    if job.table:
        rows = [row for seq in sorted(job.rows) for row in job.rows[seq]]
        print(_table(rows))
    return 1 if job.state.failures else 0
