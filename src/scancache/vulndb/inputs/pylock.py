"""pylock.toml (PEP 751 lock files, also `pylock.NAME.toml`): every `[[packages]]` with a `version`
is audited; entries without one (`vcs`, `directory`, `archive` sources) are skipped with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

from scancache.vulndb.inputs.base import ParsedInput, toml_packages

__all__ = ["parse_pylock", "is_pylock_name"]

_NAME = re.compile(r"pylock(\.[^.\s/]+)?\.toml\Z")
_SOURCES = (("vcs", "vcs"), ("directory", "local path"), ("archive", "url"))


def is_pylock_name(name: str) -> bool:
    """pylock.toml or pylock.NAME.toml (PEP 751's file names)."""
    return bool(_NAME.match(name))


def parse_pylock(path: Path, shown: str | None = None) -> ParsedInput:
    """The packages of a PEP 751 lock file (InputError naming file and line when it cannot be read)."""
    out, file, packages = toml_packages(path, shown, "pylock.toml", "packages")
    for line, package in packages:
        name, version = str(package.get("name", "")), package.get("version")
        if version:
            out.pin(name, str(version), line, file)
            continue
        kind = next((kind for key, kind in _SOURCES if key in package), "invalid")
        out.skip(line, file, name or "?", kind, f"no version ({kind} source), not a release")
    return out.result()
