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
    "pep440_order",
    "pep440_normal",
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
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")  # release segments only


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


# PEP 440's version grammar (its appendix B, as packaging parses it) without epoch, local part or
# surrounding white space: "1.2.3", "2.0rc1", "0.9.7b", "1.0-1", "v1.0.post2.dev3". Such a
# version's parts are read here, without packaging's parser (~2 ms to import, ~5 us a version);
# anything else goes to it. Groups: release; pre-release letters, number; post number after "-";
# post word, number; dev word, number. Matched on ASCII text lowered (PEP 440 ignores case); compiled
# on first use (re caches it): a file of plain releases never needs it.
_PEP440_SIMPLE = (r"v?([0-9]+(?:\.[0-9]+)*)"
                  r"(?:[-_.]?(alpha|a|beta|b|preview|pre|c|rc)[-_.]?([0-9]+)?)?"
                  r"(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?"
                  r"(?:[-_.]?(dev)[-_.]?([0-9]+)?)?\Z")
_PRE_LETTERS = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "pre": "rc", "preview": "rc",
                "rc": "rc"}
# Pre-release ranks as packaging orders them: dev-only, a, b, rc, none (see pep440_order).
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}
_DEV_ONLY, _NO_PRE = -1, 3

_Parts = tuple[tuple[int, ...], str, int, "int | None", "int | None"]


@lru_cache(maxsize=65536)
def _pep440_parts(text: str) -> _Parts | None:
    """(release, pre-release letter ("a", "b", "rc"; "" for none), its number, post number, dev
    number) of a version _PEP440_SIMPLE reads, as packaging's Version holds them; None for other
    text (then pep440() decides)."""
    # case-insensitive as PEP 440 is: the ASCII text lowered (IGNORECASE doubles the compile)
    match = re.match(_PEP440_SIMPLE, text.lower()) if text.isascii() else None
    if match is None:
        return None
    release, pre, pre_n, post_dash, post, post_n, dev, dev_n = match.groups()
    return (tuple(int(part) for part in release.split(".")),
            _PRE_LETTERS[pre] if pre else "", int(pre_n or 0),
            int(post_dash) if post_dash is not None else int(post_n or 0) if post else None,
            int(dev_n or 0) if dev else None)


def pep440_normal(text: str) -> str | None:
    """str(Version(text)) (the PEP 440 normal form: "0.9.7b" -> "0.9.7b0") for a version read
    without packaging's parser, None for text it leaves to that parser (which may yet accept it)."""
    parts = _pep440_parts(text)
    return None if parts is None else _spell(parts, trim=False)


def _spell(parts: _Parts, *, trim: bool) -> str:
    """The version parts as Version's str() writes them; trim: without the release's trailing
    zeros (but one), as canonical_pep440 writes it."""
    release, pre, pre_n, post, dev = parts
    if trim:
        release = _trimmed(release)
    return (".".join(map(str, release)) + (f"{pre}{pre_n}" if pre else "")
            + ("" if post is None else f".post{post}") + ("" if dev is None else f".dev{dev}"))


def _trimmed(release: tuple[int, ...]) -> tuple[int, ...]:
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    return release[:end]


@lru_cache(maxsize=65536)
def pep440_order(text: str) -> tuple[Any, ...] | None:
    """A key that orders text as pep440(text) orders (equal keys for equal versions) for the
    versions read without packaging's parser ("1.2.3", "2.0rc1", "0.9.7b": see pep440_normal);
    None for any other text: compare pep440() values then (never a key with a Version).

    packaging's own comparison key, read off the text: (release without trailing zeros, (pre rank,
    pre number, has post, post number, no dev, dev number)); the release keeps one zero where
    packaging keeps none, which orders the same."""
    if _PLAIN_RELEASE.match(text):  # the common case, without the grammar's regex
        return _trimmed(tuple(int(part) for part in text.split("."))), (_NO_PRE, 0, 0, 0, 1, 0)
    parts = _pep440_parts(text)
    if parts is None:
        return None
    release, pre, pre_n, post, dev = parts
    if pre:
        pre_rank = _PRE_RANK[pre]
    else:
        pre_rank, pre_n = (_DEV_ONLY if post is None and dev is not None else _NO_PRE), 0
    return _trimmed(release), (pre_rank, pre_n, 0 if post is None else 1, post or 0,
                               1 if dev is None else 0, dev or 0)


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
    platform, subprocess and sysconfig), a few ms of every audit that met a non-plain version;
    a version pep440_normal reads ("2.0rc1", "0.9.7b") is spelled without packaging's parser."""
    parts = _pep440_parts(text)
    if parts is not None:
        return _spell(parts, trim=True)
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
