"""poetry.lock (Poetry's TOML lock file): every `[[package]]` is audited at its version.

Packages whose `[package.source]` is `git`, `directory`, `file` or `url` are skipped with the reason;
`legacy` sources (a private index) are releases like any other and are audited.
"""

from __future__ import annotations

from pathlib import Path

from scancache.vulndb.inputs.base import ParsedInput, toml_packages

__all__ = ["parse_poetry_lock", "FILE_NAMES"]

FILE_NAMES = ("poetry.lock",)
_NOT_RELEASES = {"git": "vcs", "directory": "local path", "file": "local path", "url": "url"}


def parse_poetry_lock(path: Path, shown: str | None = None) -> ParsedInput:
    """The packages of a poetry.lock (InputError naming file and line when it cannot be read)."""
    out, file, packages = toml_packages(path, shown, "poetry.lock")
    for line, package in packages:
        name, version = str(package.get("name", "")), package.get("version")
        source = package.get("source") or {}
        kind = _NOT_RELEASES.get(str(source.get("type", "")))
        if kind is not None:
            out.skip(line, file, f"{name} @ {source.get('url', '')}", kind,
                     f"a {source.get('type')} source, not a release")
        elif not name or not version:
            out.skip(line, file, name or "?", "invalid", "a package without a name or a version")
        else:
            out.pin(name, str(version), line, file)
    return out.result()
