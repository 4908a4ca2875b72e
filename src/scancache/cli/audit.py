"""`scancache audit -r requirements.txt`: pinned requirements against OSV, cached or offline.

Exit status: 0 when nothing is vulnerable, 1 when something is, 2 on any error (so a CI job can tell
"vulnerable" from "could not tell"). An input that yields no auditable package is an error (2) unless
--allow-empty: a file whose every line was skipped must not pass as clean.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import zipfile
from pathlib import Path
from typing import Any

from scancache.cli._common import (
    CommandError,
    format_table,
    load_settings,
    progress,
    progress_wanted,
)
from scancache.cli._components import open_mirror, open_vulndb

__all__ = ["run", "render_table", "skipped_summary"]

#: Skipped entries named one by one on stderr; the rest are counted (the JSON report lists all).
_NOTES_SHOWN = 50


def skipped_summary(report: Any) -> str:
    """"no entries skipped" or "3 skipped: 2 unpinned, 1 editable" (what a summary line ends with)."""
    if not report.skipped:
        return "no entries skipped"
    kinds = ", ".join(f"{count} {kind}" for kind, count in report.skipped_by_kind.items())
    return f"{len(report.skipped)} skipped: {kinds}"


def render_table(report: Any) -> str:
    """The report as a table of findings plus a one-line summary (what a person reads)."""
    rows = [("PACKAGE", "VERSION", "ID", "FIXED IN", "ALIASES")]
    for finding in report.vulnerable:
        rows.append((finding.package, finding.version, finding.id,
                     ", ".join(finding.fixed_versions) or "-", ", ".join(finding.aliases) or "-"))
    lines = []
    if len(rows) > 1:
        lines += format_table(rows)
        lines.append("")
    packages = len(report.vulnerable_packages)
    total = len(report.dependencies)
    skipped = skipped_summary(report)
    if report.vulnerable:
        lines.append(f"Found {len(report.vulnerable)} known vulnerabilities in {packages} of {total} "
                     f"packages ({skipped}).")
    else:
        lines.append(f"No known vulnerabilities found in {total} packages ({skipped}).")
    return "\n".join(lines)


def read_input(path_text: str) -> Any:
    """The ParsedInput of a requirements file ('-' reads stdin; its includes are relative to the
    current directory)."""
    from scancache.vulndb.inputs.base import decode_input
    from scancache.vulndb.inputs.requirements import parse_requirements_file, parse_requirements_text

    if path_text == "-":
        return parse_requirements_text(decode_input(sys.stdin.buffer.read(), "<stdin>"), file="<stdin>")
    return parse_requirements_file(path_text)


async def _audit(args: argparse.Namespace, parsed: Any, mirror: str | None) -> Any:
    from scancache.vulndb.audit import audit_input

    settings = load_settings(args)
    vulndb = open_vulndb(settings, osv_url=args.osv_url, mirror=mirror,
                         concurrency=getattr(args, "concurrency", None))
    try:
        with progress(progress_wanted(args), "fetching advisories", None) as bar:
            return await audit_input(vulndb, parsed, progress=bar.update)
    finally:
        await vulndb.aclose()


def _prepare_mirror(path_text: str, workdir: Path) -> str:
    """The mirror database to answer from: the file itself, or one built from an all.zip given."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise CommandError(f"mirror not found: {path} (create one with 'scancache mirror import FILE')")
    if zipfile.is_zipfile(path):
        built = workdir / "mirror.sqlite3"
        mirror = open_mirror(built, must_exist=False)
        try:
            mirror.import_dump(path)
        finally:
            mirror.close()
        return str(built)
    open_mirror(path, must_exist=True).close()  # fails early, with one line, if it is not a mirror
    return str(path)


def _note_skipped(skipped: list[Any]) -> None:
    for entry in skipped[:_NOTES_SHOWN]:
        sys.stderr.write(f"scancache: note: {entry.location}: skipped ({entry.reason}): {entry.text}\n")
    if len(skipped) > _NOTES_SHOWN:
        sys.stderr.write(f"scancache: note: {len(skipped) - _NOTES_SHOWN} more entries skipped "
                         f"(--format json lists every one)\n")


def _check_not_empty(parsed: Any, shown: str, allow_empty: bool) -> None:
    """An input with no auditable package is an error unless allowed: 'clean' would be a guess."""
    if parsed.dependencies or allow_empty:
        return
    if parsed.skipped:
        kinds: dict[str, int] = {}
        for entry in parsed.skipped:
            kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        why = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        raise CommandError(f"{shown}: no auditable package: all {len(parsed.skipped)} entries were "
                           f"skipped ({why}); --allow-empty accepts this")
    raise CommandError(f"{shown}: no packages to audit (the input is empty); --allow-empty accepts this")


def run(args: argparse.Namespace) -> int:
    """Audit the requirements file and print the report; 0 clean, 1 vulnerable, 2 error."""
    import tempfile

    parsed = read_input(args.requirement)
    _note_skipped(parsed.skipped)
    _check_not_empty(parsed, "<stdin>" if args.requirement == "-" else args.requirement, args.allow_empty)
    with tempfile.TemporaryDirectory(prefix="scancache-audit-") as workdir:
        mirror = _prepare_mirror(args.mirror, Path(workdir)) if args.mirror else None
        report = asyncio.run(_audit(args, parsed, mirror))
    for vuln_id, reason in report.skipped_advisories:  # a package whose status is unknown
        sys.stderr.write(f"scancache: warning: malformed advisory {vuln_id} skipped: {reason}\n")
    if args.format == "json":
        print(report.to_json())
    else:
        print(render_table(report))
    # Vulnerable wins (1); else a skipped advisory means "could not tell" (2), never clean (0).
    return 1 if report.vulnerable else 2 if report.skipped_advisories else 0
