"""uv.lock (uv's TOML lock file): every `[[package]]` from a registry is audited at its version.

The project itself and other local packages (`source = { editable | virtual | directory | path }`)
and VCS or URL sources (`git`, `url`) are skipped with the reason: they are not releases OSV knows.
"""

from __future__ import annotations

from pathlib import Path

from scancache.vulndb.inputs.base import ParsedInput, toml_packages

__all__ = ["parse_uv_lock", "FILE_NAMES"]

FILE_NAMES = ("uv.lock",)
_LOCAL = {"editable": "editable", "virtual": "project", "directory": "local path", "path": "local path"}


def parse_uv_lock(path: Path, shown: str | None = None) -> ParsedInput:
    """The packages of a uv.lock (InputError naming file and line when it cannot be read)."""
    out, file, packages = toml_packages(path, shown, "uv.lock")
    for line, package in packages:
        name, version = str(package.get("name", "")), package.get("version")
        source = package.get("source") or {}
        local = next((kind for key, kind in _LOCAL.items() if key in source), None)
        if local is not None:
            out.skip(line, file, f"{name} ({source})", local, f"a {local} package, not a release")
        elif "git" in source:
            out.skip(line, file, f"{name} @ {source['git']}", "vcs", "a git checkout, not a release")
        elif "url" in source:
            out.skip(line, file, f"{name} @ {source['url']}", "url", "a URL, not a pinned release")
        elif not name or not version:
            out.skip(line, file, name or "?", "invalid", "a package without a name or a version")
        else:
            out.pin(name, str(version), line, file)
    return out.result()
