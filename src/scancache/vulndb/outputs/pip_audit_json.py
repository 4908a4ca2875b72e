"""pip-audit 2.x's JSON, key for key, so scripts written for `pip-audit -f json` keep working:
`{"dependencies": [{"name", "version", "vulns": [{"id", "fix_versions", "aliases", "description"}]}],
"fixes": [{"name", "old_version", "new_version"}]}`; a skipped entry is `{"name", "skip_reason"}`.
Names are PEP 503 normalised, as pip-audit prints them."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render"]


def render(report: Any, context: Any) -> str:
    """The report in pip-audit's JSON layout."""
    by_package: dict[tuple[str, str], list[Any]] = {}
    for finding in report.vulnerable:
        by_package.setdefault((finding.package, finding.version), []).append(finding)
    dependencies: list[dict[str, Any]] = []
    for dep in report.dependencies:
        vulns = [{"id": f.id, "fix_versions": list(f.fixed_versions), "aliases": list(f.aliases),
                  "description": f.summary} for f in by_package.get((dep.name, dep.version), ())]
        dependencies.append({"name": dep.normalized_name, "version": dep.version, "vulns": vulns})
    for entry in report.skipped:
        dependencies.append({"name": entry.text, "skip_reason": f"{entry.location}: {entry.reason}"})
    fixes = [{"name": name, "old_version": old, "new_version": new}
             for name, old, new in context.applied_fixes]
    return json.dumps({"dependencies": dependencies, "fixes": fixes})
