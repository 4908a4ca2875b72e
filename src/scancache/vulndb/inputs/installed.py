"""The installed environment: every distribution importlib.metadata finds (in the running
interpreter's sys.path, as pip-audit does by default, or in the directories given with --path),
audited at its installed version. Nothing is imported or run."""

from __future__ import annotations

import os
from collections.abc import Sequence

from scancache.vulndb.inputs.base import Collector, InputError, ParsedInput

__all__ = ["parse_installed"]


def parse_installed(paths: Sequence[str] | None = None) -> ParsedInput:
    """The installed distributions of paths (default: sys.path); InputError for a path that is no
    directory."""
    from importlib import metadata

    for path in paths or ():
        if not os.path.isdir(path):
            raise InputError(path, None, "not a directory (--path names a site-packages directory)")
    out = Collector("installed")
    search = list(paths) if paths else None
    for dist in metadata.distributions(path=search) if search else metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        where = str(getattr(dist, "_path", "") or "")
        out.entries += 1
        if not name or not dist.version:
            out.skip(0, where, where or "?", "invalid", "a distribution without a name or a version")
            continue
        out.pin(str(name), str(dist.version), 0, where)
    out.files.extend(paths or ["sys.path"])
    return out.result()
