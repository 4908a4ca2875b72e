"""Which reader reads an input: by file name, by `--format-in`, or by looking at a project directory.

One line per format in FORMATS; adding a format is one new module and one line here. Detection by
name: uv.lock, poetry.lock, pdm.lock, Pipfile.lock, pylock[.NAME].toml, pyproject.toml, CycloneDX
names (*.cdx.json, bom.json ...); any other name is read as a requirements file, except JSON that
declares itself CycloneDX. A project directory is audited through its lock file when it has one,
else requirements.txt, else pyproject.toml.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path

from scancache.vulndb.inputs.base import InputError, ParsedInput

__all__ = ["FORMATS", "detect_format", "read_input", "read_installed", "find_project_input",
           "PROJECT_FILES"]

#: format name -> (module, reader function) under scancache.vulndb.inputs.
FORMATS: dict[str, tuple[str, str]] = {
    "requirements": ("requirements", "parse_requirements_file"),
    "uv.lock": ("uv_lock", "parse_uv_lock"),
    "poetry.lock": ("poetry_lock", "parse_poetry_lock"),
    "pdm.lock": ("pdm_lock", "parse_pdm_lock"),
    "Pipfile.lock": ("pipfile_lock", "parse_pipfile_lock"),
    "pylock.toml": ("pylock", "parse_pylock"),
    "pyproject.toml": ("pyproject", "parse_pyproject"),
    "cyclonedx": ("cyclonedx", "parse_cyclonedx"),
}

#: What `scancache audit` looks for in a project directory, best first (lock files before pyproject).
PROJECT_FILES = ("uv.lock", "poetry.lock", "pdm.lock", "pylock.toml", "Pipfile.lock", "requirements.txt",
                 "pyproject.toml")


def detect_format(path: Path) -> str:
    """The format a file's name (or, for unknown JSON names, its first bytes) says it is."""
    from scancache.vulndb.inputs.cyclonedx import is_cyclonedx_name, looks_like_cyclonedx
    from scancache.vulndb.inputs.pylock import is_pylock_name

    name = path.name
    if name in FORMATS and name != "requirements" and name != "cyclonedx":
        return name
    if is_pylock_name(name):
        return "pylock.toml"
    if is_cyclonedx_name(name):
        return "cyclonedx"
    if name.lower().endswith(".json"):
        try:
            with open(path, "rb") as handle:
                head = handle.read(4096).decode("utf-8", "replace")
        except OSError:
            head = ""
        if looks_like_cyclonedx(head):
            return "cyclonedx"
        raise InputError(str(path), None, "a JSON file of no known input format (name it with "
                                          "--format-in: " + ", ".join(FORMATS) + ")")
    return "requirements"


def read_input(path: str | os.PathLike[str], format: str | None = None) -> ParsedInput:
    """Read one input file with the reader its name (or `format`) selects."""
    path = Path(path)
    chosen = format or detect_format(path)
    if chosen not in FORMATS:
        raise InputError(str(path), None, f"unknown input format {chosen!r} (known: {', '.join(FORMATS)})")
    module_name, function = FORMATS[chosen]
    module = importlib.import_module(f"scancache.vulndb.inputs.{module_name}")
    return getattr(module, function)(path, os.fspath(path))


def find_project_input(directory: str | os.PathLike[str] = ".") -> tuple[Path, list[Path]]:
    """(the file to audit in a project directory, the other candidates found and not used).

    InputError when the directory holds none of PROJECT_FILES (nor a pylock.NAME.toml)."""
    from scancache.vulndb.inputs.pylock import is_pylock_name

    root = Path(directory)
    found = [root / name for name in PROJECT_FILES if (root / name).is_file()]
    if not any(p.name == "pylock.toml" for p in found) and root.is_dir():
        named = sorted(p for p in root.iterdir() if is_pylock_name(p.name) and p.is_file())
        if named:
            found.insert(sum(p.name in PROJECT_FILES[:3] for p in found), named[0])
    if not found:
        raise InputError(str(root), None, "nothing to audit here: no " + ", ".join(PROJECT_FILES)
                         + " (give a file, or --path DIR for an installed environment)")
    return found[0], found[1:]


def read_installed(paths: Sequence[str] | None) -> ParsedInput:
    """The installed environment's distributions (see inputs.installed)."""
    from scancache.vulndb.inputs.installed import parse_installed

    return parse_installed(paths)
