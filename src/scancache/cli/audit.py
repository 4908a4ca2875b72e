"""`scancache audit [FILE]`: a project's dependencies against OSV, cached or offline.

Inputs: FILE by its name (requirements, uv.lock, poetry.lock, pdm.lock, Pipfile.lock, pylock.toml,
pyproject.toml, CycloneDX JSON), `-r FILE` for a requirements file, `--format-in` when the name says
nothing, `--path DIR` / `--format-in installed` for an installed environment; with none of these,
the project in the current directory (its lock file first). Outputs: `--format` on stdout and any
number of `-o FORMAT=PATH`. Policy: [tool.scancache.audit] in pyproject.toml and [audit] in the
config file, plus --ignore-vuln, --ignore-until-fixed, --fail-on and --baseline.

Exit status: 0 when nothing (at or above --fail-on) is vulnerable, 1 when something is, 2 on any
error (so a CI job can tell "vulnerable" from "could not tell"). An input that yields no auditable
package is an error (2) unless --allow-empty: a file whose every line was skipped must not pass as
clean; so is a malformed advisory that matched a pin, and an entry that names a package but could
not be read (skipped as "invalid"; --allow-invalid accepts those), unless findings already fail it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from scancache.cli._common import CommandError, load_settings, progress, progress_wanted
from scancache.cli._components import open_mirror, open_vulndb

__all__ = ["run", "render_table", "skipped_summary", "read_input"]

#: Skipped entries named one by one on stderr; the rest are counted (the JSON report lists all).
_NOTES_SHOWN = 50


def skipped_summary(report: Any) -> str:
    """"no entries skipped" or "3 skipped: 2 unpinned, 1 editable" (what a summary line ends with)."""
    from scancache.vulndb.outputs.table import skipped_summary as summary

    return summary(report)


def render_table(report: Any) -> str:
    """The report as a table of findings plus a one-line summary (what a person reads)."""
    from scancache.vulndb.outputs import render

    return render("table", report)


def read_input(args: argparse.Namespace) -> tuple[Any, str, Path]:
    """(the ParsedInput, the name errors show for it, the project directory for the policy)."""
    from scancache.vulndb.inputs.base import decode_input
    from scancache.vulndb.inputs.registry import find_project_input, read_input, read_installed
    from scancache.vulndb.inputs.requirements import parse_requirements_text

    if args.file and args.requirement:
        raise CommandError("give the input once: FILE or -r FILE")
    if args.path or args.format_in == "installed":
        if args.file or args.requirement:
            raise CommandError("--path / --format-in installed audit an environment, not a file")
        shown = ", ".join(args.path) if args.path else "the running interpreter's environment"
        return read_installed(args.path), shown, Path.cwd()
    given = args.requirement or args.file
    fmt = "requirements" if args.requirement else args.format_in
    if given == "-":
        if fmt not in (None, "requirements"):
            raise CommandError("stdin is read as a requirements file only")
        text = decode_input(sys.stdin.buffer.read(), "<stdin>")
        return parse_requirements_text(text, file="<stdin>"), "<stdin>", Path.cwd()
    if given is None:
        chosen, others = find_project_input(".")
        given = os.path.relpath(chosen)
        sys.stderr.write(f"scancache: note: auditing {given}"
                         + (f" (also found: {', '.join(os.path.relpath(p) for p in others)})" if others
                            else "") + "\n")
    path = Path(given)
    if path.is_dir() and not args.requirement:  # a project directory; -r DIR stays an error
        chosen, _ = find_project_input(path)
        given = str(chosen)
    return read_input(given, fmt), given, Path(given).resolve().parent


def _audit(args: argparse.Namespace, parsed: Any, mirror: str | None) -> Any:
    """The AuditReport: from the cache alone when it holds every answer (no event loop, no HTTP
    client imported: a warm run costs start-up and two cache reads), else asking OSV (or the mirror)."""
    from scancache.vulndb.audit import audit_input_cached

    settings = load_settings(args)
    vulndb = open_vulndb(settings, osv_url=args.osv_url, mirror=mirror,
                         concurrency=getattr(args, "concurrency", None))
    try:
        report = None if mirror else audit_input_cached(vulndb, parsed)
    except BaseException:
        vulndb.close()
        raise
    if report is not None:
        vulndb.close()
        return report
    import asyncio

    return asyncio.run(_audit_online(args, parsed, vulndb))


async def _audit_online(args: argparse.Namespace, parsed: Any, vulndb: Any) -> Any:
    from scancache.vulndb.audit import audit_input

    try:
        with progress(progress_wanted(args), "fetching advisories", None) as bar:
            return await audit_input(vulndb, parsed, progress=bar.update)
    finally:
        await vulndb.aclose()


def _prepare_mirror(path_text: str, workdir: Path) -> str:
    """The mirror database to answer from: the file itself, or one built from an all.zip given."""
    import zipfile  # only --mirror needs it: a warm audit from the cache does not pay its import

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


def _outputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    from scancache.vulndb.outputs import FORMATS

    outputs = []
    for spec in args.output or ():
        fmt, sep, target = spec.partition("=")
        if not sep or not target or fmt not in FORMATS:
            raise CommandError(f"-o {spec}: expected FORMAT=PATH with FORMAT one of {', '.join(FORMATS)}")
        outputs.append((fmt, Path(target)))
    return outputs


def _policy(args: argparse.Namespace, project_dir: Path) -> Any:
    from scancache.vulndb.policy import PolicyError, load_baseline, load_policy, with_cli

    pyproject = project_dir / "pyproject.toml"
    if not pyproject.is_file():
        pyproject = Path("pyproject.toml")
    try:
        config = Path(args.config) if getattr(args, "config", None) else None
        policy = with_cli(load_policy(pyproject, config), ignore_vulns=args.ignore_vuln or [],
                          until_fixed=args.ignore_until_fixed or [], fail_on=args.fail_on)
        if args.baseline:
            policy.baseline = load_baseline(Path(args.baseline))
            policy.baseline_source = args.baseline
    except PolicyError as exc:
        raise CommandError(str(exc)) from None
    return policy


def _fix(args: argparse.Namespace, report: Any, context: Any) -> None:
    from scancache.vulndb.fix import apply_fixes, plan_fixes

    fixes, notes = plan_fixes(report)
    diff, done, more = apply_fixes(fixes, write=not args.dry_run)
    for note in notes + more:
        sys.stderr.write(f"scancache: note: --fix: {note}\n")
    if args.dry_run:
        sys.stderr.write(diff or "scancache: note: --fix: nothing to change\n")
    else:
        context.applied_fixes = [(f.name, f.old, f.new) for f in done]
        for f in done:
            sys.stderr.write(f"scancache: note: --fix: {f.file}:{f.line}: {f.name} {f.old} -> {f.new}\n")


def run(args: argparse.Namespace) -> int:
    """Audit the input and write the report(s); 0 clean, 1 vulnerable, 2 error."""
    import gc

    # An audit builds many acyclic containers (the decoded advisories, then findings): with the
    # default threshold (700) a warm 300-pin run made 56 cyclic-GC passes over them, 5-14 ms of a
    # ~150 ms process. Reference counting frees them anyway; cycles wait for 100,000 allocations.
    threshold = gc.get_threshold()
    gc.set_threshold(100_000, *threshold[1:])
    try:
        return _run(args)
    finally:
        gc.set_threshold(*threshold)  # main() may run in a longer-lived process (tests, embedding)


def _run(args: argparse.Namespace) -> int:
    from scancache.vulndb.outputs import OutputContext, render, tool_version
    from scancache.vulndb.policy import apply_policy

    outputs = _outputs(args)
    if args.dry_run and not args.fix:
        raise CommandError("--dry-run goes with --fix")
    parsed, shown, project_dir = read_input(args)
    policy = _policy(args, project_dir)
    _note_skipped(parsed.skipped)
    _check_not_empty(parsed, shown, args.allow_empty)
    if args.mirror:
        import tempfile  # only a mirror (an all.zip given) needs a work directory

        with tempfile.TemporaryDirectory(prefix="scancache-audit-") as workdir:
            report = _audit(args, parsed, _prepare_mirror(args.mirror, Path(workdir)))
    else:
        report = _audit(args, parsed, None)
    outcome = apply_policy(policy, report.findings)
    report.findings = outcome.findings
    context = OutputContext(tool_version(), outcome.ignored, outcome.notes)
    for vuln_id, reason in report.skipped_advisories:  # a package whose status is unknown
        sys.stderr.write(f"scancache: warning: malformed advisory {vuln_id} skipped: {reason}\n")
    for note in outcome.notes:
        sys.stderr.write(f"scancache: warning: {note}\n")
    if args.fix:
        _fix(args, report, context)
    for fmt, target in outputs:
        try:
            target.write_text(render(fmt, report, context) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {fmt} report to {target}: {exc.strerror or exc}") from None
    print(render(args.format, report, context))
    invalid = _invalid_entries(report, shown, getattr(args, "allow_invalid", False))
    # Failing findings win (1); else a skipped advisory or an entry that names a package but could
    # not be audited means "could not tell" (2), never clean (0).
    return 1 if outcome.fails(policy.fail_on) else 2 if report.skipped_advisories or invalid else 0


def _invalid_entries(report: Any, shown: str, allowed: bool) -> int:
    """How many entries were skipped as invalid (they name a package but cannot be read: a lock
    entry whose version is not PEP 440, a requirement line that does not parse), after one error
    line saying so; 0 when --allow-invalid accepts them. Unpinned, URL, VCS, editable and
    local-path entries are skipped by design and are not counted."""
    count = sum(1 for entry in report.skipped if entry.kind == "invalid")
    if count and not allowed:
        sys.stderr.write(f"scancache: error: {shown}: {count} "
                         f"{'entry' if count == 1 else 'entries'} could not be audited (skipped as "
                         f"invalid, see the notes): the run is not clean; --allow-invalid accepts "
                         f"{'it' if count == 1 else 'them'}\n")
        return count
    return 0
