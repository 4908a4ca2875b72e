"""Audit policy (issue 15): ignores with reasons and expiry matched through aliases, expired and unused
ignores reported, --ignore-vuln, ignore-until-fixed, --fail-on and --baseline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from scancache.vulndb.audit import Finding
from scancache.vulndb.policy import IgnoreRule, Policy, PolicyError, apply_policy, load_policy, parse_policy

JINJA = "jinja2==2.4\n"  # PYSEC-2014-8 (CVE-2014-1402), -82, PYSEC-2019-217, -220, PYSEC-2021-66


def finding(vuln_id: str, *aliases: str, fixed: tuple[str, ...] = ("2.0",), severity: str = "high"):
    return Finding("pkg", "1.0", vuln_id, aliases, fixed, "", severity)


@pytest.fixture
def audit_here(audit_cli, tmp_path, monkeypatch):
    """`scancache audit requirements.txt ARGS` from inside tmp_path, the file pinning jinja2 2.4."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "requirements.txt").write_text(JINJA)
    return lambda *args: audit_cli("requirements.txt", *args)


def test_without_ignores_or_baseline_every_finding_is_reported_in_order():
    findings = [finding("PYSEC-2014-8", "CVE-2014-1402"), finding("GHSA-x", severity="unknown"),
                finding("PYSEC-2014-8", "CVE-2014-1402")]
    outcome = apply_policy(Policy(fail_on="critical"), findings)
    assert outcome.findings == findings and outcome.findings is not findings
    assert (outcome.ignored, outcome.notes) == ([], [])
    assert outcome.fails("critical")  # unknown severity still fails the gate
    # the same as the general path gives once there is a rule (one that matches nothing)
    unrelated = apply_policy(Policy([IgnoreRule("CVE-0", "", None, False, "cfg")]), findings)
    assert unrelated.findings == outcome.findings and unrelated.ignored == []


def test_an_ignore_matches_by_alias_and_says_why():
    policy = Policy([IgnoreRule("cve-2014-1402", "not reachable", None, False, "pyproject.toml")])
    outcome = apply_policy(policy, [finding("PYSEC-2014-8", "CVE-2014-1402"), finding("PYSEC-2014-82")])
    assert [f.id for f in outcome.findings] == ["PYSEC-2014-82"]
    assert outcome.ignored[0][1] == ("ignored by pyproject.toml: not reachable (matched through its alias "
                                     "cve-2014-1402, not its id PYSEC-2014-8)")
    assert outcome.notes == []
    by_id = apply_policy(Policy([IgnoreRule("PYSEC-2014-8", "x", None, False, "cfg")]),
                         [finding("PYSEC-2014-8", "CVE-2014-1402")])
    assert by_id.ignored[0][1] == "ignored by cfg: x"  # its own id: nothing more to say


def test_an_ignore_tied_to_a_package_hides_nothing_in_another_package():
    rule = IgnoreRule("CVE-2014-1402", "only jinja2", None, False, "cfg", package="jinja2")
    other = Finding("Evil_Pkg", "1.0", "GHSA-new-0001", ("CVE-2014-1402",), (), "", "high")
    jinja = Finding("Jinja2", "2.4", "PYSEC-2014-8", ("CVE-2014-1402",), (), "", "high")
    outcome = apply_policy(Policy([rule]), [other, jinja])
    assert [f.id for f in outcome.findings] == ["GHSA-new-0001"]
    assert [f.id for f, _ in outcome.ignored] == ["PYSEC-2014-8"]
    parsed = parse_policy({"ignore": [{"id": "CVE-2014-1402", "package": "Jinja2"}]}, "cfg")
    assert parsed.ignores[0].package == "jinja2"


def test_a_baseline_match_through_an_alias_says_so():
    policy = Policy(baseline={("pkg", "CVE-1")}, baseline_source="old.json")
    outcome = apply_policy(policy, [finding("GHSA-new", "CVE-1"), finding("CVE-1")])
    assert [reason for _, reason in outcome.ignored] == [
        "in the baseline old.json (matched through its alias CVE-1, not its id GHSA-new)",
        "in the baseline old.json"]


def test_an_expired_ignore_stops_applying_and_is_reported():
    rule = IgnoreRule("PYSEC-2014-8", "later", dt.date(2026, 1, 31), False, "cfg")
    outcome = apply_policy(Policy([rule]), [finding("PYSEC-2014-8")], today=dt.date(2026, 2, 1))
    assert [f.id for f in outcome.findings] == ["PYSEC-2014-8"] and outcome.ignored == []
    assert outcome.notes == ["ignore of PYSEC-2014-8 (cfg) no longer applies: expired on 2026-01-31"]
    unmatched = apply_policy(Policy([rule]), [], today=dt.date(2026, 2, 1))
    assert unmatched.notes == ["ignore of PYSEC-2014-8 (cfg) has expired (2026-01-31)"]
    on_the_day = apply_policy(Policy([rule]), [finding("PYSEC-2014-8")], today=dt.date(2026, 1, 31))
    assert on_the_day.findings == []


def test_an_unused_ignore_is_reported():
    outcome = apply_policy(Policy([IgnoreRule("GHSA-none", source="cfg")]), [finding("PYSEC-1")])
    assert outcome.notes == ["ignore of GHSA-none (cfg) matches no finding"]


def test_ignore_until_fixed_applies_only_while_there_is_no_fix():
    rule = IgnoreRule("PYSEC-1", until_fixed=True, source="--ignore-until-fixed")
    assert apply_policy(Policy([rule]), [finding("PYSEC-1", fixed=())]).findings == []
    outcome = apply_policy(Policy([rule]), [finding("PYSEC-1", fixed=("2.0",))])
    assert len(outcome.findings) == 1 and "a fix exists now (2.0)" in outcome.notes[0]


@pytest.mark.parametrize(("fail_on", "severities", "fails"), [
    (None, ["low"], True), ("high", ["low", "medium"], False), ("high", ["medium", "high"], True),
    ("critical", ["unknown"], True), ("low", [], False), ("medium", ["none"], False),
])
def test_fail_on_gates_by_severity_and_unknown_fails(fail_on, severities, fails):
    outcome = apply_policy(Policy(), [finding(f"X-{n}", severity=s) for n, s in enumerate(severities)])
    assert outcome.fails(fail_on) is fails


@pytest.mark.parametrize(("table", "message"), [
    ({"ignore": [{"reason": "x"}]}, r"ignore\[1\]: needs an id"),
    ({"ignore": [{"id": "A", "expires": "2027-13-01"}]}, r"ignore\[1\]: expires '2027-13-01' is not a date"),
    ({"ignore": [{"id": "A", "until": "x"}]}, r"ignore\[1\]: unknown key"),
    ({"fail-on": "severe"}, r"fail-on 'severe'"),
    ({"ignores": []}, r"unknown audit policy key"),
    ({"ignore": [{"id": "A", "until-fixed": "false"}]}, r"ignore\[1\]: until-fixed must be true or false"),
    ({"ignore": [{"id": "A", "package": ""}]}, r"ignore\[1\]: package must be a package name"),
])
def test_a_bad_policy_is_an_error_naming_where(table, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(table, "pyproject.toml [tool.scancache.audit]")


def test_policy_from_pyproject_and_config_file(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.scancache.audit]\nfail-on = "high"\nignore = [\n'
                         '  {id = "CVE-2014-1402", reason = "r", expires = 2099-01-31},\n]\n')
    config = tmp_path / "scancache.yaml"
    config.write_text("audit:\n  fail-on: low\n  ignore:\n    - {id: PYSEC-2019-217, reason: cfg}\n")
    policy = load_policy(pyproject, config)
    assert policy.fail_on == "high"
    assert [(r.id, r.expires) for r in policy.ignores] == [("PYSEC-2019-217", None),
                                                          ("CVE-2014-1402", dt.date(2099, 1, 31))]


def test_the_cli_applies_the_project_policy(audit_here, tmp_path):
    Path("pyproject.toml").write_text(
        '[tool.scancache.audit]\nignore = [\n'
        '  {id = "CVE-2014-1402", reason = "templates are trusted", expires = "2099-01-31"},\n'
        '  {id = "GHSA-gone-gone-gone", reason = "fixed long ago"},\n]\n')
    code, out, err = audit_here("--format", "json")
    assert code == 1
    report = json.loads(out)
    assert "PYSEC-2014-8" not in {v["id"] for v in report["vulnerabilities"]}
    assert report["ignored"][0]["id"] == "PYSEC-2014-8"
    assert "templates are trusted" in report["ignored"][0]["reason"]
    assert "GHSA-gone-gone-gone" in err and "matches no finding" in err
    ids = ["PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]
    args = [x for i in ids for x in ("--ignore-vuln", i)]
    code, out, _ = audit_here(*args)
    assert code == 0 and "No known vulnerabilities found in 1 packages" in out


def test_fail_on_and_baseline_from_the_command_line(audit_here, tmp_path):
    code, out, _ = audit_here("--format", "json", "-o", f"json={tmp_path / 'old.json'}")
    assert code == 1
    assert audit_here("--fail-on", "critical")[0] == 1  # these advisories have no score: unknown fails
    code, out, _ = audit_here("--baseline", str(tmp_path / "old.json"), "--format", "json")
    assert code == 0 and json.loads(out)["vulnerabilities"] == []
    Path("requirements.txt").write_text(JINJA + "requests==2.19.0\n")
    code, out, _ = audit_here("--baseline", str(tmp_path / "old.json"), "--format", "json")
    assert code == 1 and {v["package"] for v in json.loads(out)["vulnerabilities"]} == {"requests"}
    (tmp_path / "bad.json").write_text("[]")
    code, _, err = audit_here("--baseline", str(tmp_path / "bad.json"))
    assert code == 2 and "not a scancache or pip-audit JSON report" in err


def test_the_config_files_audit_section_is_the_policy_too(audit_here, tmp_path):
    config = tmp_path / "scancache.toml"
    config.write_text('[audit]\nfail-on = "critical"\nignore = [{id = "PYSEC-2014-8", reason = "cfg"}]\n')
    code, out, err = audit_here("--config", str(config), "--format", "json")
    assert code == 1, err  # unknown severity still fails a critical gate
    assert "PYSEC-2014-8" not in {v["id"] for v in json.loads(out)["vulnerabilities"]}
