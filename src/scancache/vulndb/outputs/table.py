"""The terminal table: one row per finding (severity, its fixed versions, the smallest version that
fixes all of the package's findings), then a one-line summary that always
says how many input entries were skipped and why."""

from __future__ import annotations

from typing import Any

__all__ = ["render", "skipped_summary"]


def skipped_summary(report: Any) -> str:
    """"no entries skipped" or "3 skipped: 2 unpinned, 1 editable"."""
    if not report.skipped:
        return "no entries skipped"
    kinds = ", ".join(f"{count} {kind}" for kind, count in report.skipped_by_kind.items())
    return f"{len(report.skipped)} skipped: {kinds}"


def _rows(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row)).rstrip() for row in rows]


def render(report: Any, context: Any) -> str:
    """Findings as aligned columns plus the summary line (and fixes, ignores, skipped advisories)."""
    rows: list[tuple[str, ...]] = [("PACKAGE", "VERSION", "ID", "SEVERITY", "FIXED IN", "FIX ALL",
                                    "ALIASES")]
    fixes = report.fix_versions
    for finding in report.vulnerable:
        score = f" {finding.cvss_score:.1f}" if finding.cvss_score is not None else ""
        fix_all = fixes.get((finding.package, finding.version))
        rows.append((finding.package, finding.version, finding.id, finding.severity + score,
                     ", ".join(finding.fixed_versions) or "-", fix_all or "no fix yet",
                     ", ".join(finding.aliases) or "-"))
    lines = []
    if len(rows) > 1:
        lines += _rows(rows)
        lines.append("")
    for vuln_id, reason in getattr(report, "skipped_advisories", ()):
        lines.append(f"malformed advisory skipped: {vuln_id} ({reason}): that package's status is unknown")
    for finding, reason in context.ignored:
        lines.append(f"ignored: {finding.id} in {finding.package} {finding.version} ({reason})")
    packages = len(report.vulnerable_packages)
    total = len(report.dependencies)
    skipped = skipped_summary(report)
    if report.vulnerable:
        lines.append(f"Found {len(report.vulnerable)} known vulnerabilities in {packages} of {total} "
                     f"packages ({skipped}).")
    else:
        lines.append(f"No known vulnerabilities found in {total} packages ({skipped}).")
    return "\n".join(lines)
