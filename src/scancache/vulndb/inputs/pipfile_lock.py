"""Pipfile.lock (pipenv's JSON lock file): every entry of `default` and `develop` pinned `==VERSION`
(or `===VERSION`, a `;marker` tolerated, read by packaging as pip reads it) is audited; a version
that does not parse is skipped as invalid; `git`, `path`, `file` and editable entries are skipped
with the reason."""

from __future__ import annotations

from pathlib import Path

from scancache.vulndb.inputs.base import (
    Collector,
    InputError,
    ParsedInput,
    load_json,
    normalize_name,
    read_input_text,
)
from scancache.vulndb.inputs.requirements import add_pep508

__all__ = ["parse_pipfile_lock", "FILE_NAMES"]

FILE_NAMES = ("Pipfile.lock",)
_SECTIONS = ("default", "develop")
_NOT_RELEASES = (("editable", "editable"), ("git", "vcs"), ("path", "local path"), ("file", "url"))


def parse_pipfile_lock(path: Path, shown: str | None = None) -> ParsedInput:
    """The packages of a Pipfile.lock (InputError naming file and line when it cannot be read)."""
    file = shown or str(path)
    text = read_input_text(path, file)
    document = load_json(text, file)
    if not isinstance(document, dict):
        raise InputError(file, 1, "not a Pipfile.lock (no JSON object)")
    out = Collector("Pipfile.lock")
    out.files.append(file)
    lines = text.splitlines()
    for section in _SECTIONS:
        entries = document.get(section) or {}
        if not isinstance(entries, dict):
            raise InputError(file, None, f"'{section}' is not an object")
        start = next((n for n, line in enumerate(lines) if f'"{section}"' in line), 0)
        for name, entry in entries.items():
            line = next((n + 1 for n in range(start, len(lines)) if f'"{name}"' in lines[n]), 0)
            out.entries += 1
            entry = entry if isinstance(entry, dict) else {}
            version = str(entry.get("version", ""))
            kind = next((kind for key, kind in _NOT_RELEASES if entry.get(key)), None)
            if kind is not None:
                out.skip(line, file, name, kind, f"a {kind} entry, not a release")
            elif version.strip() in ("", "*"):
                out.skip(line, file, f"{name}{version}", "unpinned",
                         "not pinned to one version (==VERSION)", normalize_name(name))
            else:  # packaging reads `===2.4`, `== 2.4` and a `;marker` as pip would
                add_pep508(out, f"{name}{version}", line, file, f"{name}{version}")
    return out.result()
