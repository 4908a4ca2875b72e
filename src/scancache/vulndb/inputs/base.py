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

from scancache.errors import ScancacheError

__all__ = ["Requirement", "Skipped", "ParsedInput", "InputError", "decode_input", "read_input_bytes",
           "normalize_name", "version_key", "SKIP_KINDS"]

_NAME_SEPARATORS = re.compile(r"[-_.]+")
_PLAIN_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")

#: The kinds of skipped entries, in the order a summary lists them.
SKIP_KINDS = ("unpinned", "url", "editable", "local path", "option", "invalid", "other")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One pinned dependency: name as written, PEP 503 name, version, and where it was read
    (line number, and the file when it came from one)."""

    name: str
    normalized_name: str
    version: str
    line: int
    file: str = ""
    ecosystem: str = "PyPI"

    @property
    def location(self) -> str:
        """"FILE:LINE" (or "line N" for text that came from no file)."""
        return f"{self.file}:{self.line}" if self.file else f"line {self.line}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input entry that was not audited: where, its text, why, and the kind of reason.

    Iterates as (line, text, reason), the tuple form earlier versions used.
    """

    line: int
    text: str
    reason: str
    kind: str = "other"
    file: str = ""

    def __iter__(self) -> Iterator[object]:
        return iter((self.line, self.text, self.reason))

    @property
    def location(self) -> str:
        """"FILE:LINE" (or "line N" for text that came from no file)."""
        return f"{self.file}:{self.line}" if self.file else f"line {self.line}"


@dataclass
class ParsedInput:
    """An input read whole: its pinned dependencies (each package and version once), the entries
    skipped, the files read (includes too) and how many entries it had in all."""

    dependencies: list[Requirement] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    entries: int = 0
    format: str = "requirements"


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
    """A PEP 440 canonical spelling, so equal versions (1.0, 1.0.0, 1.0.0.0) compare equal as text."""
    if _PLAIN_RELEASE.match(version):
        parts = version.split(".")
        while len(parts) > 1 and parts[-1].lstrip("0") == "":
            parts.pop()
        return ".".join(str(int(p)) for p in parts)
    from packaging.utils import canonicalize_version

    return str(canonicalize_version(version, strip_trailing_zero=True))


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
