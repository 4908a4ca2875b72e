"""Vulnerability queries: validate a caller's dict, canonicalise it, hash it into a cache key.

Equal questions must share one cache entry, so `{"product": "Jinja2", "ecosystem": "pypi",
"version": "2.4.0"}`, `{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}` and
`{"purl": "pkg:pypi/jinja2@2.4"}` all become the same Query and the same key.

Accepted fields (anything else is a ValueError naming it):
- a package: `product` or `package` (a name, or OSV's own `{"name", "ecosystem", "purl"}` dict),
  `ecosystem`, `version`, or a `purl` (`pkg:pypi/jinja2@2.4`); `version` needs a package;
- a `commit` (a git hash, optionally with a package);
- a `cve_id` (`CVE-2021-44228`); `product`/`package`/`ecosystem` may ride along as a label (the
  seed's `{"cve_id": ..., "product": "log4j"}`) and are left out of the key: they do not narrow it;
- NVD searches: `cpe` (a CPE 2.3 name) or `keyword`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import unquote

from scancache.cache.digest import sha256_hex
from scancache.vulndb._stdlib import json_dumps
from scancache.vulndb._values import value_methods
from scancache.vulndb.ranges import normalize_name

__all__ = ["Query", "parse_query", "pypi_query", "parse_purl", "canonical_ecosystem", "KNOWN_FIELDS"]

KNOWN_FIELDS = frozenset({"product", "package", "ecosystem", "version", "purl", "commit", "cve_id",
                          "cpe", "keyword"})

# OSV ecosystem names, keyed by their lower-case spelling (OSV compares them case-sensitively).
_ECOSYSTEMS = {name.lower(): name for name in (
    "PyPI", "npm", "Maven", "Go", "crates.io", "RubyGems", "NuGet", "Packagist", "Hex", "Pub",
    "Hackage", "CRAN", "Bioconductor", "SwiftURL", "GitHub Actions", "Debian", "Ubuntu", "Alpine",
    "Rocky Linux", "AlmaLinux", "Linux", "OSS-Fuzz", "Android", "ConanCenter", "Wolfi", "Chainguard",
)}
# purl types to OSV ecosystems (purl-spec type names).
_PURL_TYPES = {
    "pypi": "PyPI", "npm": "npm", "maven": "Maven", "golang": "Go", "cargo": "crates.io",
    "gem": "RubyGems", "nuget": "NuGet", "composer": "Packagist", "hex": "Hex", "pub": "Pub",
    "hackage": "Hackage", "cran": "CRAN", "swift": "SwiftURL", "github": "GitHub Actions",
    "conan": "ConanCenter",
}
# Compiled when first used (re caches them): an audit asks neither (~0.3 ms at import).
_CVE_PATTERN = r"^CVE-\d{4}-\d{4,}$"
_COMMIT_PATTERN = r"^[0-9a-f]{7,64}$"
_MAX_TEXT = 512


@value_methods(frozen=True)
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class Query:
    """One canonical question. kind is "package", "commit", "cve" or "nvd" (cpe/keyword search)."""

    kind: str
    ecosystem: str | None = None
    name: str | None = None
    version: str | None = None
    commit: str | None = None
    cve_id: str | None = None
    cpe: str | None = None
    keyword: str | None = None

    def __init__(self, kind: str, ecosystem: str | None = None, name: str | None = None,
                 version: str | None = None, commit: str | None = None, cve_id: str | None = None,
                 cpe: str | None = None, keyword: str | None = None) -> None:
        self.__dict__.update(kind=kind, ecosystem=ecosystem, name=name, version=version, commit=commit,
                             cve_id=cve_id, cpe=cpe, keyword=keyword)  # frozen: as dataclass sets them

    def canonical(self) -> dict[str, str]:
        """The fields that define the question, without the empty ones (what the key hashes).

        A PyPI version enters in PEP 440 canonical form (1.0 and 1.0.0 are one question), while
        `version` keeps the caller's spelling for the request itself.
        """
        out = {k: v for k, v in self.__dict__.items() if v is not None and k != "key"}
        if self.version is not None and self.ecosystem == "PyPI":
            out["version"] = _pep440_canonical(self.version)
        return out

    @cached_property
    def key(self) -> str:
        """sha256 of the canonical question: equal questions, equal keys (computed once).

        A PyPI package question (the bulk of an audit) hashes "PyPI\0name\0canonical version"
        directly, a third of the canonical-JSON path's cost; every other kind hashes the canonical
        JSON (sorted keys), which starts with "{" and so never collides with the short form.
        """
        if self.kind == "package" and self.ecosystem == "PyPI" and self.name is not None:
            version = "" if self.version is None else _pep440_canonical(self.version)
            text = f"PyPI\0{self.name}\0{version}"
        else:
            # json.dumps(sort_keys=True, separators=(",", ":")): the keys are put in order here
            # (canonical() holds strings only), and the compact encoder writes the same text
            text = json_dumps(compact=True)(dict(sorted(self.canonical().items())))
        return sha256_hex(text.encode())

    def osv_body(self) -> dict[str, Any]:
        """The body of an OSV /v1/query (also one entry of /v1/querybatch)."""
        body: dict[str, Any] = {}
        if self.name is not None:
            package = {"name": self.name}
            if self.ecosystem is not None:
                package["ecosystem"] = self.ecosystem
            body["package"] = package
        if self.version is not None:
            body["version"] = self.version
        if self.commit is not None:
            body["commit"] = self.commit
        return body


def canonical_ecosystem(value: str) -> str:
    """OSV's spelling of an ecosystem ("pypi" -> "PyPI"); unknown names (e.g. "Debian:12") kept."""
    text = value.strip()
    base, sep, rest = text.partition(":")
    known = _ECOSYSTEMS.get(base.lower())
    return (known + sep + rest) if known else text


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"query field {field!r} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text or len(text) > _MAX_TEXT or any(ord(c) < 32 for c in text):
        raise ValueError(f"query field {field!r} must be a non-empty printable string "
                         f"of at most {_MAX_TEXT} characters")
    return text


def parse_purl(purl: str) -> tuple[str, str, str | None]:
    """(ecosystem, name, version or None) from a package URL; ValueError if it is not one we know."""
    text = _text("purl", purl)
    if not text.startswith("pkg:"):
        raise ValueError(f"query field 'purl' must start with 'pkg:', got {text!r}")
    body = text[4:].lstrip("/").split("#", 1)[0].split("?", 1)[0]
    version = None
    if "@" in body.rsplit("/", 1)[-1]:
        body, _, version = body.rpartition("@")
        version = unquote(version) or None
    type_, _, path = body.partition("/")
    ecosystem = _PURL_TYPES.get(type_.lower())
    if ecosystem is None:
        raise ValueError(f"query field 'purl': unsupported package type {type_!r}")
    parts = [unquote(p) for p in path.split("/") if p]
    if not parts:
        raise ValueError(f"query field 'purl': no package name in {text!r}")
    # Maven names are group:artifact; npm keeps its @scope/; Go keeps the module path.
    name = ":".join(parts) if ecosystem == "Maven" else "/".join(parts)
    return ecosystem, name, version


# A plain release such as 2.4.0 (no leading zeros, epoch, pre/post/dev or local part): its PEP 440
# normal form is itself, so packaging's parser (~5 us) is needed only for the other spellings.
_PLAIN_RELEASE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\Z")


@lru_cache(maxsize=16384)
def _pep440_canonical(version: str) -> str:
    if _PLAIN_RELEASE.match(version):
        while version.endswith(".0"):  # what canonicalize_version does to a plain release: 2.4.0 -> 2.4
            version = version[:-2]
        return version
    from scancache.vulndb.ranges import canonical_pep440

    return canonical_pep440(version)  # 1.0 and 1.0.0 -> "1"; invalid versions kept as given


@lru_cache(maxsize=16384)
def _pep440_normal(version: str) -> str:
    if _PLAIN_RELEASE.match(version):
        return version
    from scancache.vulndb.ranges import pep440_normal

    normal = pep440_normal(version)  # "2.0rc1", "0.9.7b" -> "0.9.7b0" without packaging's parser
    if normal is not None:
        return normal
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))  # "v2.4.0" -> "2.4.0"; equality is settled by canonical()
    except InvalidVersion:
        return version


def _normal_version(ecosystem: str | None, version: str) -> str:
    return _pep440_normal(version) if ecosystem == "PyPI" else version


@lru_cache(maxsize=16384)
def pypi_query(name: str, version: str | None) -> Query:
    """The canonical Query for a PyPI package (and version): parse_query's result, without a dict.

    Memoised: a Query is immutable and computes its key (JSON + sha256, ~7 us) once, so a repeated
    audit of one lock file canonicalises and hashes nothing again.
    """
    return Query("package", ecosystem="PyPI", name=normalize_name("PyPI", name),
                 version=None if version is None else _pep440_normal(version))


def _package_fields(query: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(ecosystem, name, version) from product/package/ecosystem/version/purl, validated."""
    name_fields = [f for f in ("product", "package", "purl") if f in query]
    if len(name_fields) > 1 and not (set(name_fields) == {"product", "package"}
                                     and query["product"] == query["package"]):
        raise ValueError(f"query names the package twice: {', '.join(name_fields)}")
    ecosystem = name = version = None
    package = query.get("package")
    if isinstance(package, dict):
        unknown = sorted(set(map(str, package)) - {"name", "ecosystem", "purl"})
        if unknown:
            raise ValueError(f"query field 'package' has unknown key(s): {', '.join(unknown)}")
        if "purl" in package:
            if "name" in package:
                raise ValueError("query field 'package' has both 'name' and 'purl'")
            ecosystem, name, version = parse_purl(package["purl"])
        elif "name" in package:
            name = _text("package.name", package["name"])
        else:
            raise ValueError("query field 'package' needs a 'name' or a 'purl'")
        if "ecosystem" in package:
            if "ecosystem" in query:
                raise ValueError("query gives the ecosystem twice: 'ecosystem' and 'package.ecosystem'")
            query = {**query, "ecosystem": package["ecosystem"]}
    elif "purl" in query:
        ecosystem, name, version = parse_purl(query["purl"])
    elif name_fields:
        name = _text(name_fields[0], query[name_fields[0]])
    if "ecosystem" in query:
        given = canonical_ecosystem(_text("ecosystem", query["ecosystem"]))
        if ecosystem is not None and given != ecosystem:
            raise ValueError(f"query: ecosystem {given!r} contradicts the purl's {ecosystem!r}")
        ecosystem = given
    if "version" in query:
        if version is not None:
            raise ValueError("query gives the version twice: 'version' and the purl's @version")
        version = _text("version", query["version"])
    if name is None and (ecosystem is not None or version is not None):
        raise ValueError("query: 'ecosystem' and 'version' need a package ('product', 'package' or 'purl')")
    if name is not None and ecosystem is not None:
        name = normalize_name(ecosystem, name)
    if version is not None:
        version = _normal_version(ecosystem, version)
    return ecosystem, name, version


def parse_query(query: Any) -> Query:
    """Validate and canonicalise a query dict; ValueError names the unknown field or bad combination."""
    if isinstance(query, Query):
        return query
    if not isinstance(query, dict):
        raise ValueError(f"a query is a dict, got {type(query).__name__}")
    unknown = sorted(str(k) for k in query if k not in KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"query has unknown field(s): {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(KNOWN_FIELDS))})")
    if not query:
        raise ValueError("empty query: name a package, a purl, a commit, a cve_id, a cpe or a keyword")
    nvd = [f for f in ("cpe", "keyword") if f in query]
    if "cve_id" in query:
        extra = sorted(set(query) - {"cve_id", "product", "package", "ecosystem"})
        if extra:
            raise ValueError(f"query: 'cve_id' cannot be combined with {', '.join(extra)}")
        _package_fields(query)  # the label must still be well formed
        cve_id = _text("cve_id", query["cve_id"]).upper()
        if not re.match(_CVE_PATTERN, cve_id):
            raise ValueError(f"query field 'cve_id' must look like CVE-2021-44228, got {cve_id!r}")
        return Query("cve", cve_id=cve_id)
    if nvd:
        extra = sorted(set(query) - {"cpe", "keyword"})
        if extra:
            raise ValueError(f"query: {'/'.join(nvd)} (an NVD search) cannot be combined with "
                             f"{', '.join(extra)}")
        cpe = _text("cpe", query["cpe"]) if "cpe" in query else None
        if cpe is not None and not cpe.startswith("cpe:2.3:"):
            raise ValueError(f"query field 'cpe' must be a CPE 2.3 name (cpe:2.3:...), got {cpe!r}")
        # NVD matches keywords case-insensitively, so case does not make a different question.
        keyword = " ".join(_text("keyword", query["keyword"]).lower().split()) if "keyword" in query else None
        return Query("nvd", cpe=cpe, keyword=keyword)
    ecosystem, name, version = _package_fields(query)
    if "commit" in query:
        commit = _text("commit", query["commit"]).lower()
        if not re.match(_COMMIT_PATTERN, commit):
            raise ValueError(f"query field 'commit' must be a hex git hash, got {commit!r}")
        if version is not None:
            raise ValueError("query: 'commit' and 'version' cannot be combined")
        return Query("commit", ecosystem=ecosystem, name=name, commit=commit)
    if name is None:
        raise ValueError("query names no package, purl, commit, cve_id, cpe or keyword")
    return Query("package", ecosystem=ecosystem, name=name, version=version)
