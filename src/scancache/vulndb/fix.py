"""`scancache audit --fix`: raise vulnerable pins in requirements files to the smallest version that
fixes all of their findings, in place (or, with --dry-run, only print the unified diff).

Only `name==version` pins are rewritten, in the file and on the line the pin was read from; a pin
carrying `--hash` options is left alone (its hashes would no longer match: re-lock instead), and so
is anything read from a lock file (its tool must re-resolve). Line endings and a UTF-8 BOM are kept.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PinFix", "plan_fixes", "apply_fixes"]


@dataclass(frozen=True)
class PinFix:
    """One pin to raise: where, which package, from which version to which."""

    file: str
    line: int
    name: str
    old: str
    new: str


def plan_fixes(report: Any) -> tuple[list[PinFix], list[str]]:
    """(the pins to rewrite, notes on vulnerable pins that cannot be rewritten and why)."""
    fixes, notes = [], []
    dependencies = {(d.name, d.version): d for d in report.dependencies}
    for (package, version), fix in report.fix_versions.items():
        dep = dependencies.get((package, version))
        if dep is None:
            continue
        if fix is None:
            notes.append(f"{dep.location}: {package} {version}: no fixed version for every finding yet")
        elif report.input_format != "requirements" or not dep.file or dep.file.startswith("<"):
            notes.append(f"{dep.location}: {package} {version} -> {fix}: not a requirements file; "
                         f"upgrade it with the tool that wrote the lock")
        else:
            fixes.append(PinFix(dep.file, dep.line, package, version, fix))
    return fixes, notes


def apply_fixes(fixes: list[PinFix], *, write: bool) -> tuple[str, list[PinFix], list[str]]:
    """(unified diff of every change, fixes made, notes on pins left alone); writes when `write`."""
    by_file: dict[str, list[PinFix]] = {}
    for fix in fixes:
        by_file.setdefault(fix.file, []).append(fix)
    diff: list[str] = []
    done: list[PinFix] = []
    notes: list[str] = []
    for file, file_fixes in by_file.items():
        path = Path(file)
        raw = path.read_bytes()
        bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
        text = raw[len(bom):].decode("utf-8")
        lines = text.splitlines(keepends=True)
        before = list(lines)
        for fix in file_fixes:
            index = fix.line - 1
            if not 0 <= index < len(lines):
                notes.append(f"{file}:{fix.line}: {fix.name} not found on that line; left alone")
                continue
            line = lines[index]
            if "--hash" in line or line.rstrip("\r\n").endswith("\\"):
                notes.append(f"{file}:{fix.line}: {fix.name} {fix.old} has hashes; re-lock it to {fix.new}")
                continue
            pattern = re.compile(r"(==\s*)" + re.escape(fix.old) + r"(?=\s|;|$)")
            replacement = r"\g<1>" + fix.new.replace("\\", "\\\\")  # a template: no group refs in it
            changed, count = pattern.subn(replacement, line, count=1)
            if count:
                lines[index] = changed
                done.append(fix)
            else:
                notes.append(f"{file}:{fix.line}: {fix.name}=={fix.old} not found on that line; left alone")
        if lines != before:
            diff += difflib.unified_diff(before, lines, f"a/{file}", f"b/{file}")
            if write:
                path.write_bytes(bom + "".join(lines).encode("utf-8"))
    return "".join(diff), done, notes
