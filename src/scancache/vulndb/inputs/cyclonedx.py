"""CycloneDX JSON SBOMs: every component (nested ones too, and the BOM's subject in
`metadata.component`) with a `purl` is audited. `pkg:pypi/...`
purls become PyPI packages; other ecosystems' purls (npm, maven, golang, cargo ...) are queried in
their OSV ecosystem, since OSV answers them. Components without a purl or without a version are
skipped with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scancache.vulndb.inputs.base import Collector, InputError, ParsedInput, load_json, read_input_text

__all__ = ["parse_cyclonedx", "is_cyclonedx_name", "looks_like_cyclonedx"]


def is_cyclonedx_name(name: str) -> bool:
    """*.cdx.json, bom.json, sbom.json, *.sbom.json (the names CycloneDX tools write)."""
    lower = name.lower()
    return lower.endswith((".cdx.json", ".bom.json", ".sbom.json")) or lower in ("bom.json", "sbom.json")


def looks_like_cyclonedx(text: str) -> bool:
    """Whether JSON text declares `"bomFormat": "CycloneDX"` near its start."""
    head = text[:4096]
    return '"bomFormat"' in head and "CycloneDX" in head


def _components(items: Any) -> Iterator[dict[str, Any]]:
    for item in items or ():
        if isinstance(item, dict):
            yield item
            yield from _components(item.get("components"))


def parse_cyclonedx(path: Path, shown: str | None = None) -> ParsedInput:
    """The components of a CycloneDX JSON SBOM (InputError naming file and line when unreadable)."""
    from scancache.vulndb.query import parse_purl

    file = shown or str(path)
    text = read_input_text(path, file)
    document = load_json(text, file)
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise InputError(file, 1, "not a CycloneDX JSON document (no \"bomFormat\": \"CycloneDX\")")
    out = Collector("cyclonedx")
    out.files.append(file)
    lines = text.splitlines()
    metadata = document.get("metadata")
    subject = metadata.get("component") if isinstance(metadata, dict) else None
    # The BOM's subject (metadata.component, with its own nested components) is audited too: an
    # SBOM of an application names the application there, and it may well be a PyPI release.
    seen: set[int] = set()
    for component in _components([subject, *(document.get("components") or ())]):
        if id(component) in seen:
            continue
        seen.add(id(component))
        out.entries += 1
        purl = str(component.get("purl") or "")
        label = purl or f"{component.get('name', '?')}@{component.get('version', '')}"
        line = next((n for n, text_line in enumerate(lines, 1) if purl and purl in text_line), 0)
        if not purl:
            out.skip(line, file, label, "other", "a component without a purl")
            continue
        try:
            ecosystem, name, version = parse_purl(purl.split("?", 1)[0].split("#", 1)[0])
        except ValueError as exc:
            out.skip(line, file, label, "other", f"a purl OSV cannot be asked about: {exc}")
            continue
        if not version:
            out.skip(line, file, label, "unpinned", "a purl without a version")
        else:
            out.pin(name, version, line, file, ecosystem=ecosystem)
    return out.result()
