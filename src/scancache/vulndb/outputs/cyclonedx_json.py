"""CycloneDX 1.5 JSON: the audited packages as components (with purls) and a `vulnerabilities`
section (VEX-style: id, source, aliases as references, CVSS ratings, fixed versions as a
recommendation, the affected component). Ignored findings carry an `analysis` with the reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = ["render", "purl_of"]

_PURL_TYPES = {"PyPI": "pypi", "npm": "npm", "Maven": "maven", "Go": "golang", "crates.io": "cargo",
               "RubyGems": "gem", "NuGet": "nuget", "Packagist": "composer", "Hex": "hex", "Pub": "pub"}
_METHOD = {"CVSS:3.0": "CVSSv3", "CVSS:3.1": "CVSSv31", "CVSS:4.0": "CVSSv4"}


def purl_of(ecosystem: str, name: str, version: str) -> str:
    """The package URL of a package (PyPI names PEP 503 normalised, as the purl spec asks)."""
    from urllib.parse import quote

    kind = _PURL_TYPES.get(ecosystem, ecosystem.lower())
    return f"pkg:{kind}/{quote(name, safe='/')}@{quote(version, safe='')}"


def _vulnerability(finding: Any, ref: str, analysis: dict[str, str] | None) -> dict[str, Any]:
    vuln: dict[str, Any] = {
        "bom-ref": f"{finding.id}/{ref}",
        "id": finding.id,
        "source": {"name": "OSV", "url": f"https://osv.dev/vulnerability/{finding.id}"},
        "description": finding.summary,
        "affects": [{"ref": ref}],
    }
    if finding.aliases:
        vuln["references"] = [{"id": alias, "source": {"name": "OSV",
                                                       "url": f"https://osv.dev/vulnerability/{alias}"}}
                              for alias in finding.aliases]
    if finding.cvss_score is not None:
        method = _METHOD.get(finding.cvss_vector[:8], "other")
        vuln["ratings"] = [{"score": finding.cvss_score, "severity": finding.severity, "method": method,
                            "vector": finding.cvss_vector}]
    elif finding.severity != "unknown":
        vuln["ratings"] = [{"severity": finding.severity, "method": "other"}]
    if finding.fixed_versions:
        vuln["recommendation"] = f"Upgrade to {', '.join(finding.fixed_versions)}"
    if analysis:
        vuln["analysis"] = analysis
    return vuln


def render(report: Any, context: Any) -> str:
    """The report as a CycloneDX 1.5 JSON BOM."""
    refs: dict[tuple[str, str], str] = {}
    components = []
    for dep in report.dependencies:
        purl = purl_of(dep.ecosystem, dep.normalized_name, dep.version)
        refs[(dep.name, dep.version)] = purl
        components.append({"type": "library", "bom-ref": purl, "name": dep.name, "version": dep.version,
                           "purl": purl})
    vulnerabilities = [_vulnerability(f, refs.get((f.package, f.version), ""), None)
                       for f in report.vulnerable]
    vulnerabilities += [_vulnerability(f, refs.get((f.package, f.version), ""),
                                       {"state": "not_affected", "detail": reason})
                        for f, reason in context.ignored]
    bom = {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "scancache",
                                      "version": context.tool_version or "unknown"}]},
        },
        "components": components,
        "vulnerabilities": vulnerabilities,
    }
    return json.dumps(bom, indent=2)
