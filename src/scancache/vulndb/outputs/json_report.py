"""scancache's own JSON report (`schema_version` 1), one dependency or finding a line.

Keys: schema_version, input_format, dependencies [{name, version, file, line, ecosystem}],
vulnerabilities [{package, version, id, aliases, fixed_versions, summary, severity, cvss_score,
cvss_vector, location, ecosystem}], skipped [{file, line, text, reason, kind}], skipped_by_kind,
sources, fixes [{package, version, fix_version (null: no fix yet)}], vulnerable_packages,
withdrawn_ignored, skipped_advisories [{id, reason}], ignored [{id, package, version, reason}],
policy_notes [text]."""

from __future__ import annotations

from typing import Any

__all__ = ["render"]


def render(report: Any, context: Any) -> str:
    """The report as JSON text (AuditReport.to_json plus what the policy ignored)."""
    from scancache.vulndb.audit import dumps_report

    data = report.as_dict()
    data["ignored"] = [{"id": f.id, "package": f.package, "version": f.version, "reason": reason}
                       for f, reason in context.ignored]
    data["policy_notes"] = list(context.policy_notes)
    return dumps_report(data)
