"""Output formats of `scancache audit`: one module per format, each with
`render(report, context) -> str`. Adding a format is one new module and one line in FORMATS."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FORMATS", "OutputContext", "render"]

#: format name -> module under scancache.vulndb.outputs.
FORMATS: dict[str, str] = {
    "table": "table",
    "json": "json_report",
    "pip-audit-json": "pip_audit_json",
    "cyclonedx-json": "cyclonedx_json",
    "sarif": "sarif",
    "markdown": "markdown",
}


@dataclass
class OutputContext:
    """What a format may show beside the report: the tool's version, the findings a policy ignored
    (finding, reason), policy notes (expired or unused ignores), and fixes applied by --fix."""

    tool_version: str = ""
    ignored: list[tuple[Any, str]] = field(default_factory=list)
    policy_notes: list[str] = field(default_factory=list)
    applied_fixes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, old, new)


def render(format: str, report: Any, context: OutputContext | None = None) -> str:
    """The report in `format` (one of FORMATS); ValueError for an unknown one."""
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r} (known: {', '.join(FORMATS)})")
    module = importlib.import_module(f"scancache.vulndb.outputs.{FORMATS[format]}")
    return module.render(report, context or OutputContext())


def tool_version() -> str:
    """scancache's version (for the formats that name the tool)."""
    from scancache import __version__

    return str(__version__)
