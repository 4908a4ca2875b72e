"""pdm.lock (PDM's TOML lock file): every `[[package]]` is audited at its version.

Entries that are editable, a local path, a git checkout or a URL (keys `editable`, `path`, `git`,
`url`) are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

from scancache.vulndb.inputs.base import Collector, ParsedInput, header_lines, load_toml, read_input_text

__all__ = ["parse_pdm_lock", "FILE_NAMES"]

FILE_NAMES = ("pdm.lock",)
_NOT_RELEASES = (("editable", "editable"), ("git", "vcs"), ("path", "local path"), ("url", "url"))


def parse_pdm_lock(path: Path, shown: str | None = None) -> ParsedInput:
    """The packages of a pdm.lock (InputError naming file and line when it cannot be read)."""
    file = shown or str(path)
    text = read_input_text(path, file)
    document = load_toml(text, file)
    out = Collector("pdm.lock")
    out.files.append(file)
    lines = header_lines(text, "package")
    for index, package in enumerate(document.get("package") or []):
        line = lines[index] if index < len(lines) else 0
        out.entries += 1
        name, version = str(package.get("name", "")), package.get("version")
        kind = next((kind for key, kind in _NOT_RELEASES if package.get(key)), None)
        if kind is not None:
            out.skip(line, file, name, kind, f"a {kind} package, not a release")
        elif not name or not version:
            out.skip(line, file, name or "?", "invalid", "a package without a name or a version")
        else:
            out.pin(name, str(version), line, file)
    return out.result()
