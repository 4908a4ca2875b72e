"""Audit outputs (issue 15): every format from one run, each validated the way its readers validate
it (CycloneDX with cyclonedx-python-lib's schema validator, SARIF with jsonschema against the vendored
2.1.0 schema); severity from CVSS vectors and GHSA labels; the smallest fixing version; --fix."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from scancache.vulndb.severity import severity_of

DATA = Path(__file__).parent / "data"
LOCKFILES = DATA / "lockfiles"


@pytest.fixture
def audit_here(audit_cli, tmp_path, monkeypatch):
    """audit_here run from inside tmp_path (SARIF URIs are relative to the current directory)."""
    monkeypatch.chdir(tmp_path)
    return audit_cli


@pytest.fixture
def all_outputs(audit_here, tmp_path):
    """One audit of the demo poetry.lock writing every format at once: {format: text}."""
    lock = tmp_path / "poetry.lock"
    shutil.copy(LOCKFILES / "poetry.lock", lock)
    formats = ("json", "pip-audit-json", "cyclonedx-json", "sarif", "markdown", "table")
    args = [x for f in formats for x in ("-o", f"{f}={tmp_path / ('out.' + f)}")]
    code, out, err = audit_here(str(lock), *args)
    assert code == 1, err
    texts = {f: (tmp_path / f"out.{f}").read_text() for f in formats}
    assert texts["table"].rstrip("\n") == out.rstrip("\n")  # stdout is --format table
    return texts


def test_json_has_a_schema_version_severity_fixes_and_locations(all_outputs):
    report = json.loads(all_outputs["json"])
    assert report["schema_version"] == 1 and report["input_format"] == "poetry.lock"
    by_id = {v["id"]: v for v in report["vulnerabilities"]}
    assert by_id["PYSEC-2014-8"]["location"].endswith("poetry.lock:33")
    assert by_id["PYSEC-2014-8"]["severity"] == "unknown"  # no vector, no GHSA label
    scored = [v for v in report["vulnerabilities"] if v["cvss_score"] is not None]
    assert scored and all(v["severity"] in ("low", "medium", "high", "critical") for v in scored)
    fixes = {f["package"]: f["fix_version"] for f in report["fixes"]}
    assert fixes["jinja2"] == "2.11.3"  # the smallest version above 2.4 that fixes all five
    assert report["skipped"][0]["kind"] == "vcs"


def test_pip_audit_json_has_exactly_pip_audits_keys(all_outputs):
    data = json.loads(all_outputs["pip-audit-json"])
    assert set(data) == {"dependencies", "fixes"} and data["fixes"] == []
    audited = [d for d in data["dependencies"] if "version" in d]
    assert all(set(d) == {"name", "version", "vulns"} for d in audited)
    jinja = next(d for d in audited if d["name"] == "jinja2")
    assert all(set(v) == {"id", "fix_versions", "aliases", "description"} for v in jinja["vulns"])
    skipped = [d for d in data["dependencies"] if "skip_reason" in d]
    assert [set(d) for d in skipped] == [{"name", "skip_reason"}]


def test_cyclonedx_is_valid_for_cyclonedx_python_lib(all_outputs):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(all_outputs["cyclonedx-json"])
    assert errors is None, errors
    bom = json.loads(all_outputs["cyclonedx-json"])
    refs = {c["bom-ref"] for c in bom["components"]}
    assert "pkg:pypi/jinja2@2.4" in refs
    assert {a["ref"] for v in bom["vulnerabilities"] for a in v["affects"]} <= refs
    assert any(v["id"] == "PYSEC-2014-8" for v in bom["vulnerabilities"])


def test_sarif_is_valid_against_the_sarif_2_1_0_schema(all_outputs):
    import jsonschema

    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(all_outputs["sarif"])
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rules) == len(set(rules))  # one rule per advisory
    result = next(r for r in run["results"] if r["ruleId"] == "PYSEC-2014-8")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "poetry.lock" and location["region"]["startLine"] == 33
    assert {r["level"] for r in run["results"]} <= {"error", "warning", "note"}


def test_markdown_is_a_pr_comment(all_outputs):
    text = all_outputs["markdown"]
    assert text.startswith("## scancache audit") and "| jinja2 | 2.4 | [PYSEC-2014-8]" in text
    assert "| jinja2 2.4 | 2.11.3 |" in text and "Skipped entries" in text


def test_severity_from_cvss_v3_and_v4_vectors_and_ghsa_labels():
    v31 = {"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}
    v40 = {"severity": [{"type": "CVSS_V4",
                         "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]}
    ghsa = {"database_specific": {"severity": "MODERATE"}}
    assert tuple(severity_of([v31])) == ("critical", 9.8, v31["severity"][0]["score"])
    assert severity_of([v40]).label == "critical" and severity_of([v40]).score == 9.3
    assert severity_of([ghsa]).label == "medium" and severity_of([ghsa]).score is None
    assert severity_of([ghsa, v31]).label == "critical"  # a score wins over a label
    assert severity_of([{"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/bogus"}]}]).label == "unknown"
    assert severity_of([{}]).label == "unknown"


async def test_a_ghsa_label_reaches_the_finding(vulndb, osv_server, osv_records):
    ghsa = copy.deepcopy(osv_records["PYSEC-2014-8"])
    # a modified stamp of its own: findings are memoised per (id, modified), as OSV bumps it on change
    ghsa.update(id="GHSA-8r7q-cvjq-x353", aliases=["CVE-2014-1402"], modified="2024-02-02T00:00:00Z",
                database_specific={"severity": "HIGH"})
    osv_server.set_record(ghsa)
    report = await vulndb.audit(["jinja2==2.4"])
    merged = next(f for f in report.vulnerable if f.id == "PYSEC-2014-8")
    assert merged.severity == "high"


def test_fix_dry_run_prints_a_diff_and_fix_rewrites_the_pins(audit_here, tmp_path):
    path = tmp_path / "requirements.txt"
    original = b"\xef\xbb\xbf# pins\r\nJinja2==2.4 ; python_version > '3'\r\ncertifi==2024.8.30\r\n"
    path.write_bytes(original)
    code, _, err = audit_here(str(path), "--fix", "--dry-run")
    assert code == 1 and path.read_bytes() == original
    assert "-Jinja2==2.4 ; python_version > '3'" in err and "+Jinja2==2.11.3 ; python_version > '3'" in err
    code, _, err = audit_here(str(path), "--fix", "-o", f"pip-audit-json={tmp_path / 'p.json'}")
    assert path.read_bytes() == original.replace(b"Jinja2==2.4", b"Jinja2==2.11.3")  # BOM, CRLF kept
    assert json.loads((tmp_path / "p.json").read_text())["fixes"] == [
        {"name": "Jinja2", "old_version": "2.4", "new_version": "2.11.3"}]
    code, out, _ = audit_here(str(path))
    assert code == 0, out  # fixed for real


def test_fix_leaves_hashed_pins_and_lock_files_alone(audit_here, tmp_path):
    path = tmp_path / "requirements.txt"
    text = "jinja2==2.4 \\\n    --hash=sha256:00\n"
    path.write_text(text)
    _, _, err = audit_here(str(path), "--fix")
    assert path.read_text() == text and "has hashes" in err
    lock = tmp_path / "uv.lock"
    shutil.copy(LOCKFILES / "uv.lock", lock)
    _, _, err = audit_here(str(lock), "--fix")
    assert lock.read_text() == (LOCKFILES / "uv.lock").read_text() and "not a requirements file" in err


def test_bad_output_options_are_one_line_errors(audit_here, tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("jinja2==2.4\n")
    for args in (["-o", "xml=out.xml"], ["-o", "sarif"], ["--dry-run"],
                 ["-o", f"sarif={tmp_path / 'no' / 'such' / 'dir.sarif'}"]):
        code, _, err = audit_here(str(path), *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "error" in err, (args, err)


async def test_a_skipped_malformed_advisory_shows_in_every_output(vulndb, osv_server, osv_records):
    import jsonschema

    from scancache.vulndb.outputs import FORMATS, OutputContext, render

    bad = copy.deepcopy(osv_records["PYSEC-2014-8"])
    bad.update(id="GHSA-bad0-bad0-bad0", modified="2024-01-01T00:00:00Z", aliases="CVE-oops")
    bad["affected"][0]["ranges"] = [None]
    osv_server.set_record(bad)
    report = await vulndb.audit(["jinja2==2.4"])
    assert [i for i, _ in report.skipped_advisories] == ["GHSA-bad0-bad0-bad0"]
    texts = {f: render(f, report, OutputContext("0")) for f in FORMATS}
    for fmt in ("table", "json", "markdown", "sarif"):
        assert "GHSA-bad0-bad0-bad0" in texts[fmt], fmt
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(json.loads(texts["sarif"]), schema)
