"""Hostile or garbled lock files, pyproject tables, SBOMs and installed environments: no entry that
names a package may be left out of an audit silently (attack findings 1, 1b, 1c and 6b).

An entry whose version is not PEP 440 is skipped as "invalid" with a note naming file and line, and
an input with such an entry exits 2 (unless --allow-invalid): a lock file's entry is always meant
to be auditable, so one that is not is a broken input, never "clean".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

JINJA_IDS = {"PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def uv_lock(version: str) -> str:
    return (f'version = 1\n\n[[package]]\nname = "jinja2"\nversion = "{version}"\n'
            'source = { registry = "https://pypi.org/simple" }\n')


def poetry_lock(version: str) -> str:
    return f'[[package]]\nname = "jinja2"\nversion = "{version}"\n'


def pdm_lock(version: str) -> str:
    return f'[metadata]\ngroups = ["default"]\n\n[[package]]\nname = "jinja2"\nversion = "{version}"\n'


def pylock(version: str) -> str:
    return f'lock-version = "1.0"\n\n[[packages]]\nname = "jinja2"\nversion = "{version}"\n'


def pipfile_lock(version: str) -> str:
    return json.dumps({"_meta": {}, "default": {"jinja2": {"version": version}}, "develop": {}})


def cyclonedx(version: str, *, metadata: bool = False) -> str:
    component = {"type": "library", "name": "jinja2", "version": version,
                 "purl": f"pkg:pypi/jinja2@{version}"}
    document: dict[str, object] = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                                   "components": [] if metadata else [component]}
    if metadata:
        document["metadata"] = {"component": component}
    return json.dumps(document, indent=1)


LOCKS = {"uv.lock": uv_lock, "poetry.lock": poetry_lock, "pdm.lock": pdm_lock,
         "pylock.toml": pylock, "Pipfile.lock": lambda v: pipfile_lock("==" + v),
         "bom.cdx.json": cyclonedx}


@pytest.mark.parametrize("name", list(LOCKS))
@pytest.mark.parametrize("version", ["=2.4", "x", "2.4;python_version>'3'"])
def test_a_lock_version_that_is_not_pep440_is_never_clean(audit_cli, tmp_path, name, version):
    if name == "Pipfile.lock" and version != "x":
        pytest.skip("`===2.4` and a marker after the pin are valid in Pipfile.lock (tested below)")
    path = write(tmp_path / name, LOCKS[name](version))
    code, out, err = audit_cli(str(path))
    assert code == 2, (out, err)
    assert "no auditable package" in err and "1 invalid" in err
    assert f"{path}:" in err and "skipped (" in err  # the note names file, line and reason


@pytest.mark.parametrize("name", list(LOCKS))
def test_an_invalid_lock_entry_next_to_valid_ones_still_fails_the_run(audit_cli, tmp_path, name):
    text = LOCKS[name]("x").replace("jinja2", "flask")
    if name == "bom.cdx.json":  # a second, valid component
        document = json.loads(text)
        document["components"].append({"type": "library", "name": "jinja2", "version": "2.11.3",
                                       "purl": "pkg:pypi/jinja2@2.11.3"})
        text = json.dumps(document, indent=1)
    elif name == "Pipfile.lock":
        document = json.loads(text)
        document["default"]["jinja2"] = {"version": "==2.11.3"}
        text = json.dumps(document)
    else:
        text += "\n" + LOCKS[name]("2.11.3").split("\n\n", 1)[-1]
    path = write(tmp_path / name, text)
    code, out, err = audit_cli(str(path), "--format", "json")
    assert code == 2, (out, err)
    report = json.loads(out)
    assert [d["name"] for d in report["dependencies"]] == ["jinja2"]
    assert [s["kind"] for s in report["skipped"]] == ["invalid"]
    assert "1 entry could not be audited" in err and "--allow-invalid" in err
    code, out, err = audit_cli(str(path), "--allow-invalid")
    assert code == 0, (out, err)


@pytest.mark.parametrize("version, expected", [("===2.4", 1), ("==2.4;python_version>\"3\"", 1),
                                               ("== 2.4", 1), ("=2.4", 2), ("==2.4.*", 2)])
def test_pipfile_lock_versions_are_parsed_as_specifiers(audit_cli, tmp_path, version, expected):
    path = write(tmp_path / "Pipfile.lock", pipfile_lock(version))
    code, out, err = audit_cli(str(path), "--format", "json")
    assert code == expected, (out, err)
    if expected == 1:
        report = json.loads(out)
        assert [(d["name"], d["version"]) for d in report["dependencies"]] == [("jinja2", "2.4")]
        assert {v["id"] for v in report["vulnerabilities"]} == JINJA_IDS


# ------------------------------------------------------------------ pyproject.toml beyond [project]
PROJECT = '[project]\nname = "x"\nversion = "1"\ndependencies = ["flask==2.2.5"]\n'


@pytest.mark.parametrize("table", [
    '[tool.uv]\ndev-dependencies = ["jinja2==2.4"]\n',
    '[tool.poetry.dependencies]\npython = "^3.11"\njinja2 = "2.4"\n',
    '[tool.poetry.dependencies]\njinja2 = {version = "==2.4", extras = ["i18n"]}\n',
    '[tool.poetry.dev-dependencies]\njinja2 = "2.4"\n',
    '[tool.poetry.group.test.dependencies]\njinja2 = "2.4"\n',
    '[tool.pdm.dev-dependencies]\ntest = ["jinja2==2.4"]\n',
])
def test_pyproject_pins_outside_project_are_audited(audit_cli, tmp_path, table):
    path = write(tmp_path / "pyproject.toml", PROJECT + table)
    code, out, err = audit_cli(str(path), "--format", "json")
    assert code == 1, (out, err)
    report = json.loads(out)
    jinja = [d for d in report["dependencies"] if d["name"] == "jinja2"]
    assert [d["version"] for d in jinja] == ["2.4"] and jinja[0]["line"] > 4
    assert {v["id"] for v in report["vulnerabilities"]} >= JINJA_IDS


@pytest.mark.parametrize("spec, kind", [('"^2.4"', "unpinned"), ('">=2.4,<3"', "unpinned"),
                                        ('{git = "https://example.invalid/j.git"}', "vcs"),
                                        ('{path = "../jinja"}', "local path"),
                                        ('[{version = "2.4", python = "<3.12"}, {version = "3.1.4"}]',
                                         "unpinned")])
def test_poetry_entries_that_are_no_pin_are_listed_as_skipped(audit_cli, tmp_path, spec, kind):
    path = write(tmp_path / "pyproject.toml", PROJECT + f"[tool.poetry.dependencies]\njinja2 = {spec}\n")
    code, out, err = audit_cli(str(path), "--format", "json")
    assert code == 0, (out, err)
    report = json.loads(out)
    assert [(s["kind"], s["line"]) for s in report["skipped"]] == [(kind, 6)]
    assert "jinja2" in report["skipped"][0]["text"]


# ------------------------------------------------------------------ CycloneDX subject
def test_the_sboms_metadata_component_is_audited(audit_cli, tmp_path):
    path = write(tmp_path / "bom.cdx.json", cyclonedx("2.4", metadata=True))
    code, out, err = audit_cli(str(path), "--format", "json")
    assert code == 1, (out, err)
    assert {v["id"] for v in json.loads(out)["vulnerabilities"]} == JINJA_IDS


# ------------------------------------------------------------------ installed environment
@pytest.mark.parametrize("metadata", [None, b"\xef\xbb\xbfMetadata-Version: 2.1\r\nName: jinja2\r\n"
                                            b"Version: 2.4\r\n", b"", b"\x00\xff garbage"])
def test_an_unreadable_dist_info_falls_back_to_its_folder_name(audit_cli, tmp_path, metadata):
    site = tmp_path / "site"
    info = site / "Jinja2-2.4.dist-info"
    info.mkdir(parents=True)
    if metadata is not None:
        (info / "METADATA").write_bytes(metadata)
    code, out, err = audit_cli("--path", str(site), "--format", "json")
    assert code == 1, (out, err)
    report = json.loads(out)
    assert [(d["name"], d["version"]) for d in report["dependencies"]] == [("Jinja2", "2.4")]
    assert {v["id"] for v in report["vulnerabilities"]} == JINJA_IDS


def test_a_dist_info_with_no_usable_name_fails_the_run(audit_cli, tmp_path):
    site = tmp_path / "site"
    write(site / "flask-2.2.5.dist-info" / "METADATA", "Metadata-Version: 2.1\nName: flask\nVersion: 2.2.5\n")
    (site / "garbage.dist-info").mkdir()
    code, out, err = audit_cli("--path", str(site))
    assert code == 2, (out, err)
    assert "garbage.dist-info" in err
