"""`scancache audit -r requirements.txt`: pinned requirements against OSV, cached or offline.

Exit status: 0 when nothing is vulnerable, 1 when something is, 2 on any error (so a CI job can tell
"vulnerable" from "could not tell").
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
    read_text,
)
from scancache.cli._components import open_mirror, open_vulndb

__all__ = ["run", "render_table"]


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
    if report.vulnerable:
        lines.append(f"Found {len(report.vulnerable)} known vulnerabilities in {packages} of {total} "
                     f"packages.")
    else:
        lines.append(f"No known vulnerabilities found in {total} packages.")
    return "\n".join(lines)


async def _audit(args: argparse.Namespace, lines: list[str], mirror: str | None) -> Any:
    settings = load_settings(args)
    vulndb = open_vulndb(settings, osv_url=args.osv_url, mirror=mirror)
    try:
        with progress(progress_wanted(args), "fetching advisories", None) as bar:
            return await vulndb.audit(lines, progress=bar.update)
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


def run(args: argparse.Namespace) -> int:
    """Audit the requirements file and print the report; 0 clean, 1 vulnerable, 2 error."""
    import tempfile

    # Every line, comments and blanks included: the report names skipped lines by their number.
    lines = read_text(args.requirement, "requirements file").splitlines()
    with tempfile.TemporaryDirectory(prefix="scancache-audit-") as workdir:
        mirror = _prepare_mirror(args.mirror, Path(workdir)) if args.mirror else None
        report = asyncio.run(_audit(args, lines, mirror))
    for number, text, reason in report.skipped:
        sys.stderr.write(f"scancache: note: line {number} skipped ({reason}): {text}\n")
    for vuln_id, reason in report.skipped_advisories:  # a package whose status is unknown
        sys.stderr.write(f"scancache: warning: malformed advisory {vuln_id} skipped: {reason}\n")
    if args.format == "json":
        print(report.to_json())
    else:
        print(render_table(report))
    # Vulnerable wins (1); else a skipped advisory means "could not tell" (2), never clean (0).
    return 1 if report.vulnerable else 2 if report.skipped_advisories else 0
