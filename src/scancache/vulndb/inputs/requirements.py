"""pip requirements files, read as pip reads them, without running pip.

- Text: a UTF-8 (or UTF-16) byte order mark is dropped, CRLF and LF both end lines, a backslash at a
  line's end continues it, `#` after white space starts a comment (a comment never continues).
- `-r FILE` / `-c FILE` (and `--requirement`, `--constraint`, `=` forms) are followed relative to the
  including file. A cycle, a missing file or a URL include is an InputError naming the including
  file and line and the included file: a requirements file whose packages cannot all be read must
  never audit as clean. A file included twice (not a cycle) is read once.
- `name==version` and `name===version` pins are audited (extras and markers tolerated, markers not
  evaluated: a pin for another platform is audited too; `--hash` options stripped). Pins in
  constraints files are audited too (they are the versions pip installs). The same package at the
  same PEP 440 version counts once, whatever its spelling (`Jinja2==2.4.0` and `jinja2==2.4`).
- Everything else is skipped with a reason: unpinned (`flask>=2`, `pyyaml==6.*`), URL (`name @
  https://...`, `git+https://...`), editable (`-e`), local path, other pip options, invalid lines.
  An unpinned requirement whose package is pinned elsewhere in the input (a constraints file, say) is
  covered by that pin and not listed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from scancache.vulndb.inputs.base import (
    Collector,
    InputError,
    ParsedInput,
    decode_input,
    normalize_name,
    read_input_bytes,
)

__all__ = ["parse_requirements_file", "parse_requirements_text", "looks_like_requirements", "add_pep508"]

# name[extras]==version [; marker]: the lines a lock file is made of.
_SIMPLE_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*==\s*"
                         r"([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*(?:;.*)?$")
# pip's rule: a comment starts at a "#" at the start of a line or after white space. This and the
# next are compiled on first use (re caches them): a file of plain pins needs neither.
_COMMENT_PATTERN = r"(^|\s+)#.*$"
_OPTIONS_PATTERN = r"\s+--?[A-Za-z]"  # `--hash=...`, `--config-settings` after a spec
_INCLUDES = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_EDITABLE = ("-e", "--editable")
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar")

# (name, PEP 503 name, version) per "name==version" text: a file audited again in one process (or
# shared by many projects) is matched and normalised once. Bounded; cleared when full.
_PIN_MEMO: dict[str, tuple[str, str, str] | None] = {}
_PIN_MEMO_MAX = 65536


def looks_like_requirements(path: Path) -> bool:
    """Whether a file name reads as a requirements file (requirements*.txt, *.in, constraints*.txt)."""
    name = path.name.lower()
    return name.endswith((".txt", ".in")) and ("requirement" in name or "constraint" in name
                                               or name.startswith("req"))


def parse_requirements_file(path: str | os.PathLike[str], shown: str | None = None) -> ParsedInput:
    """Read a requirements file and every file it includes (InputError when one cannot be read)."""
    reader = _Reader()
    reader.read_file(Path(path), shown or os.fspath(path), None)
    return reader.result()


def parse_requirements_text(text: str | Iterable[str], *, file: str = "",
                            base_dir: str | os.PathLike[str] | None = None) -> ParsedInput:
    """Read requirements given as text or lines; includes are followed relative to base_dir (the
    current directory when None). `file` names the text in locations and errors ("" for none)."""
    lines = text.splitlines() if isinstance(text, str) else [str(line) for line in text]
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    reader = _Reader()
    reader.read_lines(lines, file, Path(base_dir) if base_dir is not None else Path())
    return reader.result()


def add_pep508(out: Collector, spec_text: str, line: int, file: str, text: str) -> None:
    """Add one PEP 508 requirement to out: an exact `==`/`===` pin is audited; a URL, VCS or local
    path, a range and anything unparseable are skipped with the reason (text is what notes show)."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as PackagingRequirement

    try:
        req = PackagingRequirement(spec_text)
    except InvalidRequirement as exc:
        if "://" in spec_text or spec_text.startswith(_VCS_PREFIXES):
            out.skip(line, file, text, "url", "a URL, not a pinned release")
        elif spec_text.startswith((".", "/", "~")) or os.sep in spec_text \
                or spec_text.lower().endswith(_ARCHIVE_SUFFIXES):
            out.skip(line, file, text, "local path", "a local path, not a pinned release")
        else:
            out.skip(line, file, text, "invalid", f"not a requirement: {exc}")
        return
    name = normalize_name(req.name)
    if req.url:
        out.skip(line, file, text, "url", "a URL, not a pinned release")
        return
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        out.skip(line, file, text, "unpinned", "not pinned to one version (name==version)", name)
        return
    out.pin(req.name, specs[0].version, line, file, normalized=name)


def _logical_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(first line number, text) with comments removed and backslash continuations joined, as pip
    reads a requirements file: a comment line never continues onto the next one."""
    pending, start = "", 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if "#" in line:
            line = re.sub(_COMMENT_PATTERN, "", line)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _simple_pin(spec_text: str) -> tuple[str, str, str] | None:
    """(name, normalised name, version) when spec_text is a plain `name==version` pin, else None."""
    try:
        return _PIN_MEMO[spec_text]
    except KeyError:
        pass
    match = _SIMPLE_PIN.match(spec_text)
    pin = None
    if match is not None:
        name = match.group(1)
        pin = (name, normalize_name(name), match.group(2))
    if len(_PIN_MEMO) >= _PIN_MEMO_MAX:
        _PIN_MEMO.clear()
    _PIN_MEMO[spec_text] = pin
    return pin


def _split_option(text: str) -> tuple[str, str]:
    """("-r", "base.txt") from "-r base.txt", "-rbase.txt", "--requirement=base.txt" ..."""
    if text.startswith("--"):
        head, _, rest = text.partition(" ")
        option, eq, value = head.partition("=")
        value = value if eq else rest
    else:
        option, value = text[:2], text[2:]
    return option, value.strip().strip("'\"")


class _Reader(Collector):
    """One walk over a requirements file and its includes."""

    def __init__(self) -> None:
        super().__init__("requirements")
        self.stack: list[tuple[str, str]] = []  # (real path, shown name) of the files being read
        self.done: set[str] = set()

    def read_file(self, path: Path, shown: str, origin: tuple[str, int, str] | None) -> None:
        """Read one file; origin is (including file, line, option text) for an include."""
        real = os.path.realpath(path)
        if any(real == open_real for open_real, _ in self.stack):
            chain = [name for open_real, name in self.stack[self._stack_index(real):]] + [shown]
            assert origin is not None  # the first file cannot be on the stack already
            raise InputError(origin[0], origin[1], f"{origin[2]}: include cycle: {' -> '.join(chain)}")
        if real in self.done:
            return
        try:
            data = read_input_bytes(path, shown)
        except InputError as exc:
            if origin is None:
                raise
            reason = str(exc).split(": ", 1)[1]
            raise InputError(origin[0], origin[1], f"{origin[2]}: {reason}: {shown}") from None
        self.stack.append((real, shown))
        self.files.append(shown)
        try:
            self.read_lines(decode_input(data, shown).splitlines(), shown, path.parent)
        finally:
            self.stack.pop()
        self.done.add(real)

    def _stack_index(self, real: str) -> int:
        return next(i for i, (open_real, _) in enumerate(self.stack) if open_real == real)

    def read_lines(self, lines: list[str], file: str, base_dir: Path) -> None:
        for number, line in _logical_lines(lines):
            text = line.strip()
            if not text:
                continue
            self.entries += 1
            if text.startswith("-"):
                self._option(text, number, file, base_dir)
            else:
                self._requirement(text, number, file)

    def _skip(self, number: int, file: str, text: str, kind: str, reason: str,
              name: str | None = None) -> None:
        self.skip(number, file, text, kind, reason, name)

    def _option(self, text: str, number: int, file: str, base_dir: Path) -> None:
        option, value = _split_option(text)
        if option in _INCLUDES:
            if not value:
                raise InputError(file, number, f"{option} needs a file name")
            if "://" in value:
                raise InputError(file, number, f"{option} {value}: includes from URLs are not "
                                               f"fetched (download the file and audit it)")
            target = Path(os.path.expanduser(value))
            path = target if target.is_absolute() else base_dir / target
            self.read_file(path, os.path.normpath(path), (file, number, f"{option} {value}"))
        elif option in _EDITABLE:
            self._skip(number, file, text, "editable", f"editable install ({option}), not a release")
        else:
            self._skip(number, file, text, "option", f"pip option ({option}), not a package")

    def _requirement(self, text: str, number: int, file: str) -> None:
        spec_text = text
        if " -" in text or "\t-" in text:  # per-requirement options such as --hash
            spec_text = re.split(_OPTIONS_PATTERN, text, maxsplit=1)[0].strip()
        simple = _simple_pin(spec_text)
        if simple is not None:  # the common "name==version" line, without packaging's full parser
            self.pin(simple[0], simple[2], number, file, normalized=simple[1])
            return
        add_pep508(self, spec_text, number, file, text)

