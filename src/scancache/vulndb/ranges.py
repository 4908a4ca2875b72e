"""Does an OSV record affect a package version? Range evaluation shared by the mirror and the test server.

OSV ranges are event lists (introduced / fixed / last_affected / limit). ECOSYSTEM ranges compare with
`packaging.version` for PyPI (PEP 440: 1.0 == 1.0.0) and with a small semver comparator for the
ecosystems whose versions are semver; SEMVER ranges always use semver. GIT ranges cannot be ordered
without the repository's history, so only a commit query consults them, and only for exact matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

__all__ = [
    "SemVer",
    "parse_semver",
    "pep440",
    "canonical_pep440",
    "normalize_name",
    "version_key_for",
    "in_events",
    "affected_entry_matches",
    "record_affects",
    "SEMVER_ECOSYSTEMS",
]

#: Ecosystems whose ECOSYSTEM ranges order like semver (OSV schema notes). Not NuGet: its four-part
#: versions (1.2.3.4) do not parse as semver, and a wrong order is worse than none (the record's
#: `versions` list still applies).
SEMVER_ECOSYSTEMS = frozenset({"npm", "crates.io", "Go", "Hex", "Pub", "SwiftURL"})

# Compiled on first use (re caches it): PyPI versions never need it.
_SEMVER_PATTERN = (
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_NAME_RE = re.compile(r"[-_.]+")


class SemVer(tuple):
    """A comparable semver 2.0 version: (major, minor, patch, is_release, prerelease identifiers)."""

    __slots__ = ()


def _pre_key(part: str) -> tuple[int, int, str]:
    # Numeric identifiers sort before alphanumeric ones, and numerically among themselves.
    return (0, int(part), "") if part.isdigit() else (1, 0, part)


@lru_cache(maxsize=65536)
def parse_semver(text: str) -> SemVer | None:
    """Parse "1.2.3-rc.1+build" (missing minor/patch read as 0, leading "v" allowed); None if not semver."""
    match = re.match(_SEMVER_PATTERN, text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    pre_key = tuple(_pre_key(p) for p in pre.split(".")) if pre else ()
    # A release (no prerelease) sorts after every prerelease of the same version.
    return SemVer((int(major), int(minor or 0), int(patch or 0), 0 if pre else 1, pre_key))


@lru_cache(maxsize=65536)
def pep440(text: str) -> Any:
    """packaging.version.Version(text), memoised; None when text is not a PEP 440 version."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def canonical_pep440(text: str) -> str:
    """packaging.utils.canonicalize_version(text): the PEP 440 normal form with the release's
    trailing zeros dropped (1.0.0 and 1 -> "1", 2.4.0rc1 -> "2.4rc1"); text not PEP 440 comes back
    unchanged. Built from Version's public parts: packaging.utils imports packaging.tags (with
    platform, subprocess and sysconfig), a few ms of every audit that met a non-plain version."""
    parsed = pep440(text)
    if parsed is None:
        return text
    release = list(parsed.release)
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    out = f"{parsed.epoch}!" if parsed.epoch else ""
    out += ".".join(map(str, release))
    if parsed.pre is not None:
        out += f"{parsed.pre[0]}{parsed.pre[1]}"
    if parsed.post is not None:
        out += f".post{parsed.post}"
    if parsed.dev is not None:
        out += f".dev{parsed.dev}"
    if parsed.local is not None:
        out += f"+{parsed.local}"
    return out


def normalize_name(ecosystem: str, name: str) -> str:
    """The name as the ecosystem compares it: PEP 503 for PyPI, case-folded for a few, else as is."""
    if ecosystem == "PyPI":
        return _NAME_RE.sub("-", name).lower()
    if ecosystem in ("npm", "Packagist", "NuGet"):
        return name.lower()
    return name


def version_key_for(ecosystem: str, range_type: str = "ECOSYSTEM") -> Callable[[str], Any] | None:
    """The parser that orders versions for a range type in an ecosystem; None when unknown."""
    if range_type == "SEMVER":
        return parse_semver
    if range_type != "ECOSYSTEM":
        return None
    if ecosystem == "PyPI":
        return pep440
    if ecosystem in SEMVER_ECOSYSTEMS:
        return parse_semver
    return None


def in_events(version: Any, events: Iterable[Mapping[str, str]], key: Callable[[str], Any]) -> bool:
    """Whether the parsed version falls inside the range the OSV events describe.

    Events apply in version order: introduced opens, fixed closes at that version, last_affected
    closes just after it. "introduced": "0" is below everything. Unparseable events are skipped.
    """
    parsed: list[tuple[int, Any, str]] = []
    for event in events:
        for kind, raw in event.items():
            if kind not in ("introduced", "fixed", "last_affected"):
                continue  # "limit" only bounds git walks
            if kind == "introduced" and raw == "0":
                parsed.append((0, None, kind))
                continue
            value = key(str(raw))
            if value is not None:
                parsed.append((1, value, kind))
    try:
        parsed.sort(key=lambda item: (item[0], item[1]) if item[0] else (0,))
    except TypeError:
        return False  # mixed incomparable versions: refuse to guess
    affected = False
    for bottom, value, kind in parsed:
        if kind == "introduced":
            if not bottom or version >= value:
                affected = True
        elif kind == "fixed":
            if version >= value:
                affected = False
        elif version > value:  # last_affected
            affected = False
    return affected


def _version_listed(ecosystem: str, version: str, listed: Iterable[str]) -> bool:
    if ecosystem == "PyPI":
        wanted = pep440(version)
        if wanted is not None:
            return any(pep440(str(v)) == wanted for v in listed)
    return version in listed


def affected_entry_matches(entry: Mapping[str, Any], *, version: str | None = None,
                           commit: str | None = None) -> bool:
    """Whether one `affected` entry covers version (or commit); with neither, any entry matches."""
    if commit is not None:
        for rng in entry.get("ranges") or ():
            if rng.get("type") == "GIT":
                # Without the repository's history only an exact introduced/last_affected commit is known.
                for event in rng.get("events") or ():
                    if commit in (event.get("introduced"), event.get("last_affected")):
                        return True
        return False
    if version is None:
        return True
    ecosystem = str((entry.get("package") or {}).get("ecosystem", ""))
    if _version_listed(ecosystem, version, entry.get("versions") or ()):
        return True
    for rng in entry.get("ranges") or ():
        key = version_key_for(ecosystem, str(rng.get("type", "")))
        if key is None:
            continue
        parsed = key(version)
        if parsed is not None and in_events(parsed, rng.get("events") or (), key):
            return True
    return False


def record_affects(record: Mapping[str, Any], *, ecosystem: str | None, name: str | None,
                   version: str | None = None, commit: str | None = None) -> bool:
    """Whether the record affects the package (ecosystem may be None: any) at version or commit.

    With no package (a bare commit query) every affected entry is considered.
    """
    for entry in record.get("affected") or ():
        package = entry.get("package") or {}
        if name is not None:
            eco = str(package.get("ecosystem", ""))
            if ecosystem is not None and eco != ecosystem:
                continue
            if normalize_name(eco, str(package.get("name", ""))) != normalize_name(eco, name):
                continue
        if affected_entry_matches(entry, version=version, commit=commit):
            return True
    return False
