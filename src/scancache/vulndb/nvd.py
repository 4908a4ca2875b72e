"""NVD CVE API 2.0 client (cveId, cpeName, keywordSearch), paged and rate limited, answers in OSV shape.

NVD pages with startIndex/resultsPerPage/totalResults (at most 2,000 rows a page). Each request
first takes a slot from the shared limiter. Results are converted to OSV-shaped records (id, modified,
published, summary, details, references, severity, database_specific.source = "nvd") so callers see
one format whatever answered.
"""

from __future__ import annotations

from typing import Any

from scancache.cache.urls import redact_url
from scancache.errors import VulnDBError
from scancache.vulndb.http import JSONClient, Malformed

__all__ = ["NVDClient", "nvd_to_osv"]

RATE_LIMIT_STATUSES = frozenset({403, 429, 500, 502, 503, 504})  # NVD says "over the limit" with 403
MAX_PAGES = 500


def _check_page(data: Any) -> None:
    if not isinstance(data, dict):
        raise Malformed(f"expected an object, got {type(data).__name__}")
    for field in ("totalResults", "startIndex", "resultsPerPage"):
        if not isinstance(data.get(field), int) or isinstance(data.get(field), bool):
            raise Malformed(f"'{field}' must be an integer")
    vulns = data.get("vulnerabilities")
    if not isinstance(vulns, list):
        raise Malformed("'vulnerabilities' must be a list")
    for item in vulns:
        cve = item.get("cve") if isinstance(item, dict) else None
        if not isinstance(cve, dict) or not isinstance(cve.get("id"), str):
            raise Malformed("a 'vulnerabilities' entry lacks cve.id")


def _timestamp(value: Any) -> str:
    text = str(value or "")
    return text if not text or text.endswith("Z") or "+" in text[10:] else text + "Z"


def nvd_to_osv(cve: dict[str, Any]) -> dict[str, Any]:
    """An OSV-shaped record from one NVD `cve` object (rejected CVEs come back as withdrawn)."""
    descriptions = cve.get("descriptions") or []
    english = next((d.get("value", "") for d in descriptions if d.get("lang") == "en"), "")
    severity = []
    for metric_key, osv_type in (("cvssMetricV31", "CVSS_V3"), ("cvssMetricV30", "CVSS_V3"),
                                 ("cvssMetricV2", "CVSS_V2")):
        for metric in (cve.get("metrics") or {}).get(metric_key) or []:
            vector = (metric.get("cvssData") or {}).get("vectorString")
            if vector:
                severity.append({"type": osv_type, "score": vector})
                break
    cpes = sorted({match.get("criteria", "")
                   for config in cve.get("configurations") or []
                   for node in config.get("nodes") or []
                   for match in node.get("cpeMatch") or [] if match.get("criteria")})
    record: dict[str, Any] = {
        "id": cve["id"],
        "modified": _timestamp(cve.get("lastModified")),
        "published": _timestamp(cve.get("published")),
        "aliases": [],
        "summary": english.split(". ")[0][:200],
        "details": english,
        "references": [{"type": "WEB", "url": r["url"]} for r in cve.get("references") or []
                       if isinstance(r, dict) and r.get("url")],
        "severity": severity,
        "database_specific": {"source": "nvd", "vulnStatus": cve.get("vulnStatus"), "cpes": cpes},
    }
    if cve.get("vulnStatus") == "Rejected":
        record["withdrawn"] = record["modified"]
    return record


class NVDClient:
    """Talks to one NVD CVE endpoint (the URL of /rest/json/cves/2.0 itself)."""

    def __init__(self, http: JSONClient, url: str, *, api_key: str | None = None,
                 limiter: Any = None, page_size: int = 2000) -> None:
        self.http = http
        self.url = url
        self.api_key = api_key
        self.limiter = limiter
        self.page_size = page_size

    async def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every CVE matching params (cveId, cpeName, keywordSearch ...) as OSV-shaped records."""
        headers = {"apiKey": self.api_key} if self.api_key else None
        before = self.limiter.acquire if self.limiter is not None else None
        records: list[dict[str, Any]] = []
        start = 0
        for _ in range(MAX_PAGES):
            page = {**params, "startIndex": str(start), "resultsPerPage": str(self.page_size)}
            data = await self.http.request("nvd_cves", "GET", self.url, params=page, headers=headers,
                                           check=_check_page, retry_statuses=RATE_LIMIT_STATUSES,
                                           before_attempt=before)
            if data is None:  # NVD answers 404 for a malformed cveId
                return records
            rows = data["vulnerabilities"]
            records.extend(nvd_to_osv(row["cve"]) for row in rows)
            start += len(rows)
            if not rows or start >= data["totalResults"]:
                return records
        raise VulnDBError(f"GET {redact_url(self.url)}", f"more than {MAX_PAGES} pages")

    async def get_cve(self, cve_id: str) -> dict[str, Any] | None:
        """One CVE as an OSV-shaped record, or None when NVD does not know it."""
        found = await self.search({"cveId": cve_id})
        return next((r for r in found if r["id"] == cve_id), None)

