"""Audit inputs (issue 15): every lock file format, pyproject.toml, a CycloneDX SBOM and an installed
environment yield the same findings as the equivalent requirements file; detection by name; the
project in the current directory when no file is given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scancache.vulndb.audit import audit_input
from scancache.vulndb.inputs.base import InputError
from scancache.vulndb.inputs.registry import detect_format, find_project_input, read_input

LOCKFILES = Path(__file__).parent / "data" / "lockfiles"
FORMATS = {"uv.lock": "uv.lock", "poetry.lock": "poetry.lock", "pdm.lock": "pdm.lock",
           "Pipfile.lock": "Pipfile.lock", "pylock.toml": "pylock.toml",
           "pyproject.toml": "pyproject.toml", "bom.cdx.json": "cyclonedx"}
SKIPPED = {"uv.lock": {"editable", "vcs"}, "poetry.lock": {"vcs"}, "pdm.lock": {"vcs"},
           "Pipfile.lock": {"vcs"}, "pylock.toml": {"local path", "vcs"},
           "pyproject.toml": {"url", "unpinned"}, "bom.cdx.json": {"other"}}


def findings_of(report) -> set[tuple[str, str, str]]:
    return {(f.package.lower(), f.version, f.id) for f in report.vulnerable}




@pytest.mark.parametrize("name", sorted(FORMATS))
async def test_each_format_yields_the_findings_of_the_equivalent_requirements_file(vulndb, name):
    expected = await audit_input(vulndb, read_input(LOCKFILES / "requirements.txt"))
    assert len(findings_of(expected)) >= 7  # jinja2, requests and urllib3 are vulnerable
    parsed = read_input(LOCKFILES / name)
    assert parsed.format == FORMATS[name] and detect_format(LOCKFILES / name) == FORMATS[name]
    report = await audit_input(vulndb, parsed)
    assert findings_of(report) == findings_of(expected)
    assert {s.kind for s in report.skipped} == SKIPPED[name]  # the project, git and URL entries
    assert all(d.line > 0 and d.file.endswith(name) for d in report.dependencies)
    for finding in report.vulnerable:  # every finding points at the line its package is locked on
        path, line = finding.location.rsplit(":", 1)
        text = Path(path).read_text().splitlines()[int(line) - 1:int(line) + 2]
        assert any(finding.package.lower() in t.lower() or "[[package" in t for t in text), finding


async def test_a_cyclonedx_sbom_queries_other_ecosystems_too(vulndb, osv_server):
    report = await audit_input(vulndb, read_input(LOCKFILES / "bom.cdx.json"))
    lodash = [d for d in report.dependencies if d.ecosystem == "npm"]
    assert [(d.name, d.version) for d in lodash] == [("lodash", "4.17.20")]
    # The SBOM's own subject (metadata.component) is audited too: it may be a PyPI release.
    assert ("demo", "0.1.0") in {(d.name, d.version) for d in report.dependencies}


@pytest.mark.parametrize(("name", "text", "message"), [
    ("uv.lock", "version = 1\n[[package]\nname = 'x'\n", r"uv\.lock:2: not valid TOML"),
    ("Pipfile.lock", '{"default": {\n "a": 1,\n}', r"Pipfile\.lock:3: not valid JSON"),
    ("bom.cdx.json", '{"bomFormat": "SPDX"}', r"bom\.cdx\.json:1: not a CycloneDX"),
    ("poetry.lock", b"\xef\xbb\xbf[[package]]\nname = \"a\xff\"\n", r"poetry\.lock:2: not UTF-8"),
    ("data.json", '{"a": 1}', r"data\.json: a JSON file of no known input format"),
])
def test_unreadable_inputs_are_one_error_naming_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError, match=message):
        read_input(path)


def test_a_bom_before_a_lock_file_is_dropped(tmp_path):
    path = tmp_path / "poetry.lock"
    path.write_bytes(b"\xef\xbb\xbf" + (LOCKFILES / "poetry.lock").read_bytes().replace(b"\n", b"\r\n"))
    assert len(read_input(path).dependencies) == 7


def test_a_project_directory_prefers_its_lock_file(tmp_path):
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copy(LOCKFILES / name, tmp_path / name)
    assert find_project_input(tmp_path)[0].name == "requirements.txt"
    shutil.copy(LOCKFILES / "poetry.lock", tmp_path / "poetry.lock")
    chosen, others = find_project_input(tmp_path)
    assert chosen.name == "poetry.lock" and {p.name for p in others} == {"requirements.txt",
                                                                           "pyproject.toml"}
    (tmp_path / "pylock.dev.toml").write_text((LOCKFILES / "pylock.toml").read_text())
    assert detect_format(tmp_path / "pylock.dev.toml") == "pylock.toml"
    with pytest.raises(InputError, match="nothing to audit here"):
        find_project_input(tmp_path / "missing")


def test_audit_with_no_file_audits_the_project_here(audit_cli, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("uv.lock", "pyproject.toml"):
        shutil.copy(LOCKFILES / name, project / name)
    monkeypatch.chdir(project)
    code, out, err = audit_cli("--format", "json")
    assert code == 1, err
    assert "auditing uv.lock (also found: pyproject.toml)" in err
    report = json.loads(out)
    assert report["input_format"] == "uv.lock" and len(report["dependencies"]) == 7


def test_format_in_reads_a_file_whatever_its_name(audit_cli, tmp_path):
    path = tmp_path / "locked-deps"
    shutil.copy(LOCKFILES / "poetry.lock", path)
    code, out, _ = audit_cli(str(path), "--format-in", "poetry.lock", "--format", "json")
    assert code == 1 and json.loads(out)["input_format"] == "poetry.lock"


def test_an_installed_environment_is_audited_from_its_metadata(audit_cli, tmp_path):
    site = tmp_path / "site-packages"
    for name, version in (("Jinja2", "2.4"), ("certifi", "2024.8.30")):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    code, out, err = audit_cli("--path", str(site), "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    assert sorted(d["name"] for d in report["dependencies"]) == ["Jinja2", "certifi"]
    assert {v["package"] for v in report["vulnerabilities"]} == {"Jinja2"}
    code, _, err = audit_cli("--path", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in err


def test_the_running_interpreter_is_read_when_no_path_is_given():
    from scancache.vulndb.inputs.installed import parse_installed

    names = {d.normalized_name for d in parse_installed().dependencies}
    assert {"packaging", "httpx", "pytest"} <= names
