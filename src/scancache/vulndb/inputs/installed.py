"""The installed environment: every distribution importlib.metadata finds (in the running
interpreter's sys.path, as pip-audit does by default, or in the directories given with --path),
audited at its installed version. Nothing is imported or run.

A distribution whose METADATA is missing or unreadable (a byte order mark, CRLF line ends) is
audited by its folder's NAME-VERSION.dist-info name; one that has neither is skipped as invalid,
which makes the audit exit 2."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

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
        where = str(getattr(dist, "_path", "") or "")
        name, version = _name_and_version(dist)
        if not name or not version:
            name, version = _from_folder_name(os.path.basename(where))
        out.entries += 1
        if not name or not version:
            out.skip(0, where, where or "?", "invalid", "a distribution without a name or a version "
                     "(its METADATA is unreadable and its folder is not NAME-VERSION.dist-info)")
            continue
        out.pin(name, version, 0, where)
    out.files.extend(paths or ["sys.path"])
    return out.result()


def _name_and_version(dist: Any) -> tuple[str, str]:
    """Name and version from a distribution's METADATA ("" for what it lacks or cannot be read)."""
    try:
        meta = dist.metadata
        name = meta["Name"] if meta else None
        version = meta["Version"] if meta else None
    except (OSError, UnicodeDecodeError, ValueError):  # an unreadable METADATA
        return "", ""
    return str(name or "").strip(), str(version or "").strip()


def _from_folder_name(folder: str) -> tuple[str, str]:
    """(name, version) from `NAME-VERSION.dist-info` / `.egg-info` (the wheel spec's folder name,
    where `-` in the name is written `_`), ("", "") for any other folder.

    A METADATA that is missing, empty or garbled (a byte order mark, CRLF line ends) must not hide
    the distribution: its folder still says what it is."""
    for suffix in (".dist-info", ".egg-info"):
        if folder.endswith(suffix):
            name, sep, version = folder[: -len(suffix)].partition("-")
            if sep and name and version:
                return name, version.split("-", 1)[0]
    return "", ""
