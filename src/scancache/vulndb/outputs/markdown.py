"""Markdown for a pull-request comment: a summary line, a table of findings with severity, fix and
location, the upgrade that fixes each package, and what was skipped or ignored."""

from __future__ import annotations

from typing import Any

__all__ = ["render"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Any, context: Any) -> str:
    """The report as GitHub-flavoured Markdown."""
    from scancache.vulndb.outputs.table import skipped_summary

    total = len(report.dependencies)
    lines = ["## scancache audit", ""]
    if report.vulnerable:
        lines.append(f"**{len(report.vulnerable)} known vulnerabilities** in "
                     f"{len(report.vulnerable_packages)} of {total} packages ({skipped_summary(report)}).")
        lines += ["", "| Package | Version | ID | Severity | Fixed in | Where | Summary |",
                  "|---|---|---|---|---|---|---|"]
        for f in report.vulnerable:
            score = f" ({f.cvss_score:.1f})" if f.cvss_score is not None else ""
            link = f"[{f.id}](https://osv.dev/vulnerability/{f.id})"
            lines.append(f"| {_cell(f.package)} | {_cell(f.version)} | {link} | {f.severity}{score} | "
                         f"{_cell(', '.join(f.fixed_versions) or '-')} | {_cell(f.location or '-')} | "
                         f"{_cell(f.summary)} |")
        lines += ["", "| Package | Upgrade to |", "|---|---|"]
        for (package, version), fix in report.fix_versions.items():
            lines.append(f"| {_cell(package)} {_cell(version)} | {_cell(fix) if fix else 'no fix yet'} |")
    else:
        lines.append(f"No known vulnerabilities in {total} packages ({skipped_summary(report)}).")
    if report.skipped:
        lines += ["", "<details><summary>Skipped entries</summary>", ""]
        lines += [f"- `{_cell(e.location)}` {_cell(e.reason)}: `{_cell(e.text)}`" for e in report.skipped]
        lines += ["", "</details>"]
    if context.ignored:
        lines += ["", "Ignored by policy:", ""]
        lines += [f"- {f.id} in {f.package} {f.version}: {_cell(reason)}" for f, reason in context.ignored]
    for vuln_id, reason in getattr(report, "skipped_advisories", ()):
        lines.append(f"- :warning: malformed advisory {vuln_id} skipped: {_cell(reason)}")
    for note in context.policy_notes:
        lines.append(f"- :warning: {_cell(note)}")
    return "\n".join(lines)
