"""pdm.lock (PDM's TOML lock file): every `[[package]]` is audited at its version.

Entries that are editable, a local path, a git checkout or a URL (keys `editable`, `path`, `git`,
`url`) are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

from scancache.vulndb.inputs.base import ParsedInput, toml_packages

__all__ = ["parse_pdm_lock", "FILE_NAMES"]

FILE_NAMES = ("pdm.lock",)
_NOT_RELEASES = (("editable", "editable"), ("git", "vcs"), ("path", "local path"), ("url", "url"))


def parse_pdm_lock(path: Path, shown: str | None = None) -> ParsedInput:
    """The packages of a pdm.lock (InputError naming file and line when it cannot be read)."""
    out, file, packages = toml_packages(path, shown, "pdm.lock")
    for line, package in packages:
        name, version = str(package.get("name", "")), package.get("version")
        kind = next((kind for key, kind in _NOT_RELEASES if package.get(key)), None)
        if kind is not None:
            out.skip(line, file, name, kind, f"a {kind} package, not a release")
        elif not name or not version:
            out.skip(line, file, name or "?", "invalid", "a package without a name or a version")
        else:
            out.pin(name, str(version), line, file)
    return out.result()
