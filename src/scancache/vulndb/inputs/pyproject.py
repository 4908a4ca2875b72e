"""pyproject.toml: the exact `==` pins of `[project] dependencies`, of each
`[project.optional-dependencies]` group and of each `[dependency-groups]` group (PEP 735) are
audited; every other requirement is skipped with the reason (a range is no version to audit:
lock the project and audit the lock file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scancache.vulndb.inputs.base import Collector, ParsedInput, load_toml, read_input_text
from scancache.vulndb.inputs.requirements import add_pep508

__all__ = ["parse_pyproject", "FILE_NAMES"]

FILE_NAMES = ("pyproject.toml",)


def parse_pyproject(path: Path, shown: str | None = None) -> ParsedInput:
    """The pinned requirements of a pyproject.toml (InputError naming file and line if unreadable)."""
    file = shown or str(path)
    text = read_input_text(path, file)
    document = load_toml(text, file)
    out = Collector("pyproject.toml")
    out.files.append(file)
    lines = text.splitlines()
    project = document.get("project") or {}
    groups: list[tuple[str, Any]] = [("dependencies", project.get("dependencies") or [])]
    groups += [(f"optional-dependencies.{k}", v) for k, v in (project.get("optional-dependencies")
                                                              or {}).items()]
    groups += [(f"dependency-groups.{k}", v) for k, v in (document.get("dependency-groups") or {}).items()]
    for _group, requirements in groups:
        for spec in requirements:
            if not isinstance(spec, str):  # a PEP 735 {include-group = "..."}: its group is read too
                continue
            out.entries += 1
            add_pep508(out, spec, _line_of(lines, spec), file, spec)
    return out.result()


def _line_of(lines: list[str], spec: str) -> int:
    return next((n for n, line in enumerate(lines, 1) if f'"{spec}"' in line or f"'{spec}'" in line), 0)
