"""SARIF 2.1.0 for code scanning: one rule per advisory, one result per vulnerable package and
advisory, pointing at the line of the pin in the lock or requirements file. Severity maps to `level`
(critical and high: error, medium and unknown: warning, low: note) and to the
`security-severity` property GitHub sorts by (the CVSS score, else the label's band)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["render"]

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "unknown": "warning", "low": "note",
          "none": "note"}
_BAND_SCORE = {"critical": "9.0", "high": "7.0", "medium": "4.0", "low": "0.1", "none": "0.0"}


def _uri(file: str) -> str:
    """A relative URI for a file under the current directory (what code scanning resolves against
    the repository root), else the absolute file URI."""
    absolute = Path(file).resolve()
    relative = os.path.relpath(absolute, Path.cwd())
    return absolute.as_uri() if relative.startswith("..") else Path(relative).as_posix()


def _location(finding: Any, dependencies: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    dep = dependencies.get((finding.package, finding.version))
    if dep is None or not dep.file or dep.file.startswith("<"):
        return []
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(dep.file)}}
    if dep.line:
        physical["region"] = {"startLine": dep.line}
    return [{"physicalLocation": physical}]


def render(report: Any, context: Any) -> str:
    """The report as a SARIF 2.1.0 log."""
    rules: dict[str, dict[str, Any]] = {}
    rule_index: dict[str, int] = {}
    results = []
    dependencies = {(d.name, d.version): d for d in report.dependencies}
    fixes = report.fix_versions  # a property that walks every finding: once, not per result
    for finding in report.vulnerable:
        if finding.id not in rules:
            rule_index[finding.id] = len(rules)
            score = (f"{finding.cvss_score:.1f}" if finding.cvss_score is not None
                     else _BAND_SCORE.get(finding.severity))
            properties: dict[str, Any] = {"tags": ["security", "vulnerability", "dependency"]}
            if score is not None:
                properties["security-severity"] = score
            rules[finding.id] = {
                "id": finding.id,
                "name": finding.id.replace("-", ""),
                "shortDescription": {"text": finding.summary or finding.id},
                "fullDescription": {"text": finding.summary or finding.id},
                "helpUri": f"https://osv.dev/vulnerability/{finding.id}",
                "help": {"text": f"Aliases: {', '.join(finding.aliases) or '-'}. Fixed in: "
                                 f"{', '.join(finding.fixed_versions) or 'no fix yet'}."},
                "properties": properties,
            }
        fix = fixes.get((finding.package, finding.version))
        results.append({
            "ruleId": finding.id,
            "ruleIndex": rule_index[finding.id],
            "level": _LEVEL.get(finding.severity, "warning"),
            "message": {"text": f"{finding.package} {finding.version} is affected by {finding.id}"
                                + (f" ({', '.join(finding.aliases)})" if finding.aliases else "")
                                + (f"; upgrade to {fix}." if fix else "; no fix yet.")},
            "locations": _location(finding, dependencies),
            "partialFingerprints": {"package/advisory": f"{finding.package}@{finding.version}/{finding.id}"},
        })
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "scancache", "version": context.tool_version or "unknown",
                                "informationUri": "https://osv.dev", "rules": list(rules.values())}},
            "results": results,
            "invocations": [{
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "warning",
                     "message": {"text": f"malformed advisory {vuln_id} skipped: {reason}"}}
                    for vuln_id, reason in getattr(report, "skipped_advisories", ())],
            }],
        }],
    }
    return json.dumps(log, indent=2)
