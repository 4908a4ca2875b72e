"""Output formats of `scancache audit`: one module per format, each with
`render(report, context) -> str`. Adding a format is one new module and one line in FORMATS."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from scancache.vulndb._values import FACTORY, value_methods

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


@value_methods
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class OutputContext:
    """What a format may show beside the report: the tool's version, the findings a policy ignored
    (finding, reason), policy notes (expired or unused ignores), and fixes applied by --fix."""

    tool_version: str = ""
    ignored: list[tuple[Any, str]] = field(default_factory=list)
    policy_notes: list[str] = field(default_factory=list)
    applied_fixes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, old, new)

    def __init__(self, tool_version: str = "", ignored: list[tuple[Any, str]] = FACTORY,
                 policy_notes: list[str] = FACTORY,
                 applied_fixes: list[tuple[str, str, str]] = FACTORY) -> None:
        self.tool_version = tool_version
        self.ignored = [] if ignored is FACTORY else ignored
        self.policy_notes = [] if policy_notes is FACTORY else policy_notes
        self.applied_fixes = [] if applied_fixes is FACTORY else applied_fixes


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
