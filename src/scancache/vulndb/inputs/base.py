"""What every input format yields: pinned dependencies, skipped entries with a reason, and errors that
name the file and line.

An input reader never guesses: an entry it cannot audit (an unpinned requirement, a URL, an editable
checkout, a pip option) is listed as skipped with the reason, so a report can say what it did not
look at; anything that would make the reader miss packages it should see (an include it cannot
follow, bytes it cannot decode) is an InputError, never a silent "0 packages".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scancache.errors import ScancacheError
from scancache.vulndb._values import FACTORY, value_methods

__all__ = ["Requirement", "Skipped", "ParsedInput", "InputError", "Collector", "decode_input",
           "read_input_bytes", "read_input_text", "load_toml", "load_json", "toml_packages", "header_lines",
           "normalize_name", "version_key", "pep440_key", "SKIP_KINDS"]

_NAME_SEPARATORS = re.compile(r"[-_.]+")
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")
# A release without leading zeros (the text of vulndb.query's pattern: re compiles it once).
_CANONICAL_RELEASE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*\Z")

#: The kinds of skipped entries, in the order a summary lists them.
SKIP_KINDS = ("unpinned", "url", "vcs", "editable", "local path", "project", "option", "invalid", "other")


@value_methods(frozen=True)
@dataclass(slots=True, init=False, repr=False, eq=False)  # see scancache.vulndb._values
class Requirement:
    """One pinned dependency: name as written, PEP 503 name, version, and where it was read
    (line number, and the file when it came from one)."""

    name: str
    normalized_name: str
    version: str
    line: int
    file: str = ""
    ecosystem: str = "PyPI"

    def __init__(self, name: str, normalized_name: str, version: str, line: int, file: str = "",
                 ecosystem: str = "PyPI") -> None:
        setattr_ = object.__setattr__  # frozen
        setattr_(self, "name", name)
        setattr_(self, "normalized_name", normalized_name)
        setattr_(self, "version", version)
        setattr_(self, "line", line)
        setattr_(self, "file", file)
        setattr_(self, "ecosystem", ecosystem)

    @property
    def location(self) -> str:
        """"FILE:LINE", "FILE" when no line is known, "line N" for text that came from no file."""
        return _location(self.file, self.line)


@value_methods(frozen=True)
@dataclass(slots=True, init=False, repr=False, eq=False)  # see scancache.vulndb._values
class Skipped:
    """An input entry that was not audited: where, its text, why, and the kind of reason.

    Iterates as (line, text, reason), the tuple form earlier versions used.
    """

    line: int
    text: str
    reason: str
    kind: str = "other"
    file: str = ""

    def __init__(self, line: int, text: str, reason: str, kind: str = "other", file: str = "") -> None:
        setattr_ = object.__setattr__  # frozen
        setattr_(self, "line", line)
        setattr_(self, "text", text)
        setattr_(self, "reason", reason)
        setattr_(self, "kind", kind)
        setattr_(self, "file", file)

    def __iter__(self) -> Iterator[object]:
        return iter((self.line, self.text, self.reason))

    @property
    def location(self) -> str:
        """"FILE:LINE", "FILE" when no line is known, "line N" for text that came from no file."""
        return _location(self.file, self.line)


@value_methods
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class ParsedInput:
    """An input read whole: its pinned dependencies (each package and version once), the entries
    skipped, the files read (includes too) and how many entries it had in all."""

    dependencies: list[Requirement] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    entries: int = 0
    format: str = "requirements"

    def __init__(self, dependencies: list[Requirement] = FACTORY, skipped: list[Skipped] = FACTORY,
                 files: list[str] = FACTORY, entries: int = 0, format: str = "requirements") -> None:
        self.dependencies = [] if dependencies is FACTORY else dependencies
        self.skipped = [] if skipped is FACTORY else skipped
        self.files = [] if files is FACTORY else files
        self.entries = entries
        self.format = format

    def __repr__(self) -> str:  # short: a repr of every dependency is megabytes for a large lock
        return (f"ParsedInput(format={self.format!r}, dependencies={len(self.dependencies)}, "
                f"skipped={len(self.skipped)}, files={self.files!r})")


def _location(file: str, line: int) -> str:
    if file:
        return f"{file}:{line}" if line else file
    return f"line {line}" if line else ""


class InputError(ScancacheError, ValueError):
    """An input that cannot be read as a whole: the message names the file and the line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = (f"{file}:{line}" if line else file) if file else (f"line {line}" if line else "input")
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line


def normalize_name(name: str) -> str:
    """The PEP 503 form of a package name (lowercase, runs of -_. as one -)."""
    lower = name.lower()
    if "_" not in lower and "." not in lower and "--" not in lower:  # most names: no regex needed
        return lower
    return _NAME_SEPARATORS.sub("-", lower)


def version_key(version: str) -> str:
    """A PEP 440 canonical spelling, so equal versions (1.0, 1.0.0, 1.0.0.0) compare equal as text
    (text that is no PEP 440 version comes back unchanged: see pep440_key)."""
    key = pep440_key(version)
    return version if key is None else key


def pep440_key(version: str) -> str | None:
    """The PEP 440 canonical spelling of version, or None when it is no PEP 440 version (`=2.4`,
    `x`, `2.4;marker`): such a version matches no advisory range, so auditing it would say "clean"."""
    # "2.4.1": its own canonical spelling (most pins). At most 640 characters (the least limit
    # sys.set_int_max_str_digits allows): a longer one is converted below, as packaging converts
    # it, so a 5,000-digit release is the ValueError it always was, not a pin audited as written.
    if len(version) <= 640 and _CANONICAL_RELEASE.match(version) and not version.endswith(".0"):
        return version
    if _PLAIN_RELEASE.match(version):
        parts = version.split(".")
        while len(parts) > 1 and parts[-1].lstrip("0") == "":
            parts.pop()
        return ".".join(str(int(p)) for p in parts)
    from scancache.vulndb.ranges import canonical_pep440, pep440, pep440_normal

    if pep440_normal(version) is not None:  # "2.0rc1", "0.9.7b": valid, read without the parser
        return canonical_pep440(version)
    return None if pep440(version) is None else canonical_pep440(version)


def decode_input(data: bytes, file: str) -> str:
    """Text of an input file: a UTF-8 or UTF-16 byte order mark is honoured and removed; otherwise
    UTF-8. Bytes that do not decode are an InputError naming the file and the line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(file, line, f"not {encoding.upper().replace('-SIG', '')} text "
                                     f"(byte {exc.start} cannot be decoded)") from None


def read_input_bytes(path: Path, shown: str | None = None) -> bytes:
    """The bytes of path; an InputError naming the file (as `shown`) when it cannot be read."""
    name = shown or str(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(name, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(name, None, "is a directory, not a file") from None
    except OSError as exc:
        raise InputError(name, None, f"cannot read: {exc.strerror or exc}") from None


def read_input_text(path: Path, shown: str | None = None) -> str:
    """The decoded text of an input file (BOM dropped); InputError naming the file when it cannot be."""
    name = shown or str(path)
    return decode_input(read_input_bytes(path, name), name)


def load_toml(text: str, file: str) -> dict[str, Any]:
    """A TOML document; InputError naming the file and line when it does not parse."""
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise InputError(file, int(match.group(1)) if match else None, f"not valid TOML: {exc}") from None


def load_json(text: str, file: str) -> Any:
    """A JSON document; InputError naming the file and line when it does not parse."""
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(file, getattr(exc, "lineno", None), f"not valid JSON: {exc}") from None


def toml_packages(path: Path, shown: str | None, format: str, table: str = "package"
                  ) -> tuple[Collector, str, list[tuple[int, dict[str, Any]]]]:
    """For a TOML lock file: (a Collector for format with the file recorded, the file's shown name,
    [(line of its `[[table]]` header, entry)] for each entry of that array of tables)."""
    file = shown or str(path)
    text = read_input_text(path, file)
    entries = load_toml(text, file).get(table) or []
    if not isinstance(entries, list):
        raise InputError(file, None, f"'{table}' is not an array of tables")
    lines = header_lines(text, table)
    out = Collector(format)
    out.files.append(file)
    out.entries = len(entries)
    return out, file, [(lines[i] if i < len(lines) else 0, entry if isinstance(entry, dict) else {})
                       for i, entry in enumerate(entries)]


def header_lines(text: str, header: str) -> list[int]:
    """1-based line numbers of each `[[header]]` array-of-tables line, in order: the i-th entry of that
    array in the parsed document starts at the i-th of these lines (tomllib keeps no positions)."""
    wanted = f"[[{header}]]"
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == wanted]


class Collector:
    """Builds a ParsedInput: each package and PEP 440 version once (the first place it was seen
    stands for the repeats), skipped entries in input order. An unpinned entry whose package is
    pinned elsewhere in the same input is covered by that pin and not listed."""

    def __init__(self, format: str) -> None:
        self.format = format
        self.pins: dict[tuple[str, str, str], Requirement] = {}
        self.skipped_entries: list[tuple[Skipped, str | None]] = []  # (entry, name if unpinned)
        self.files: list[str] = []
        self.entries = 0
        self.version_keys: dict[str, str] = {}

    def pin(self, name: str, version: str, line: int, file: str, *, normalized: str | None = None,
            ecosystem: str = "PyPI") -> None:
        """Add one pinned package (counted once per PEP 503 name and PEP 440 version).

        A PyPI version that is not PEP 440 is skipped as "invalid" (with file and line) instead:
        OSV would match nothing for it, and the package would pass as clean unexamined."""
        if normalized is None:
            normalized = normalize_name(name) if ecosystem == "PyPI" else name
        vkey = self.version_keys.get(version)
        if vkey is None:
            if ecosystem != "PyPI":
                vkey = version
            else:
                vkey = pep440_key(version)
                if vkey is None:
                    self.skip(line, file, f"{name} {version}", "invalid",
                              f"version {version!r} is not a PEP 440 version")
                    return
            self.version_keys[version] = vkey
        key = (ecosystem, normalized, vkey)
        if key not in self.pins:
            self.pins[key] = Requirement(name, normalized, version, line, file, ecosystem)

    def skip(self, line: int, file: str, text: str, kind: str, reason: str,
             unpinned_name: str | None = None) -> None:
        """Add one entry that is not audited; unpinned_name (PEP 503) lets a pin elsewhere cover it."""
        self.skipped_entries.append((Skipped(line, text, reason, kind, file), unpinned_name))

    def result(self) -> ParsedInput:
        """The ParsedInput collected so far."""
        pinned = {key[1] for key in self.pins if key[0] == "PyPI"}
        skipped = [entry for entry, name in self.skipped_entries if name is None or name not in pinned]
        return ParsedInput(list(self.pins.values()), skipped, self.files, self.entries, self.format)
