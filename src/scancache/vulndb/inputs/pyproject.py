"""pyproject.toml: exact pins are audited wherever a tool keeps dependencies, every other entry is
skipped with the reason (a range is no version to audit: lock the project and audit the lock file).

Read: `[project] dependencies`, each `[project.optional-dependencies]` group, each
`[dependency-groups]` group (PEP 735), uv's `[tool.uv] dev-dependencies`, PDM's
`[tool.pdm.dev-dependencies]` groups (all PEP 508 strings), and Poetry's `[tool.poetry.dependencies]`,
`[tool.poetry.dev-dependencies]` and `[tool.poetry.group.NAME.dependencies]` (Poetry's own syntax:
a bare `"2.4"` or `"==2.4"` is an exact pin; `^`, `~`, ranges, `*`, several constraints, git, path
and url entries are skipped with the reason). No table that names packages is left out silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from scancache.vulndb.inputs.base import Collector, ParsedInput, load_toml, normalize_name, read_input_text
from scancache.vulndb.inputs.requirements import add_pep508

__all__ = ["parse_pyproject", "FILE_NAMES"]

FILE_NAMES = ("pyproject.toml",)
_POETRY_NOT_RELEASES = (("git", "vcs"), ("path", "local path"), ("url", "url"))
_POETRY_EXACT = re.compile(r"(?:==)?\s*([0-9A-Za-z][0-9A-Za-z.+!_-]*)\Z")


def parse_pyproject(path: Path, shown: str | None = None) -> ParsedInput:
    """The pinned requirements of a pyproject.toml (InputError naming file and line if unreadable)."""
    file = shown or str(path)
    text = read_input_text(path, file)
    document = load_toml(text, file)
    out = Collector("pyproject.toml")
    out.files.append(file)
    lines = text.splitlines()
    project = _table(document.get("project"))
    tool = _table(document.get("tool"))
    groups: list[Any] = [project.get("dependencies") or []]
    groups += list(_table(project.get("optional-dependencies")).values())
    groups += list(_table(document.get("dependency-groups")).values())
    groups.append(_table(tool.get("uv")).get("dev-dependencies") or [])
    groups += list(_table(_table(tool.get("pdm")).get("dev-dependencies")).values())
    for requirements in groups:
        for spec in requirements if isinstance(requirements, list) else ():
            if not isinstance(spec, str):  # a PEP 735 {include-group = "..."}: its group is read too
                continue
            out.entries += 1
            add_pep508(out, spec, _line_of(lines, spec), file, spec)
    poetry = _table(tool.get("poetry"))
    tables = [("tool.poetry.dependencies", poetry.get("dependencies")),
              ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies"))]
    tables += [(f"tool.poetry.group.{name}.dependencies", _table(group).get("dependencies"))
               for name, group in _table(poetry.get("group")).items()]
    for header, table in tables:
        start = _header_line(lines, header)
        for name, constraint in _table(table).items():
            if name.lower() == "python":  # the interpreter, not a package
                continue
            out.entries += 1
            _poetry_entry(out, name, constraint, _key_line(lines, name, start), file)
    return out.result()


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _poetry_entry(out: Collector, name: str, constraint: Any, line: int, file: str) -> None:
    """One Poetry dependency: a string, a table ({version, extras, markers ...}) or a list of tables
    (several constraints, one per Python or platform: no single version to audit)."""
    text = f"{name} = {constraint}"
    if isinstance(constraint, dict):
        kind = next((kind for key, kind in _POETRY_NOT_RELEASES if key in constraint), None)
        if kind is not None:
            out.skip(line, file, text, kind, f"a {kind} dependency, not a release")
            return
        constraint = constraint.get("version", "")
    if not isinstance(constraint, str):
        out.skip(line, file, text, "unpinned", "several constraints, not one pinned version",
                 normalize_name(name))
        return
    exact = _POETRY_EXACT.match(constraint.strip())
    if exact is None:
        out.skip(line, file, text, "unpinned", "not pinned to one version (Poetry: \"VERSION\" or "
                 "\"==VERSION\")", normalize_name(name))
        return
    add_pep508(out, f"{name}=={exact.group(1)}", line, file, text)


def _line_of(lines: list[str], spec: str) -> int:
    return next((n for n, line in enumerate(lines, 1) if f'"{spec}"' in line or f"'{spec}'" in line), 0)


def _header_line(lines: list[str], header: str) -> int:
    """The 1-based line of `[header]` (0 when the table is written inline elsewhere)."""
    wanted = f"[{header}]"
    return next((n for n, line in enumerate(lines, 1) if line.strip().replace(" ", "") == wanted), 0)


def _key_line(lines: list[str], key: str, start: int) -> int:
    """The first line at or after start that sets key (`key =`, `"key" =`), 0 when none does."""
    pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
    return next((n for n in range(max(start, 1), len(lines) + 1) if pattern.match(lines[n - 1])), 0)
