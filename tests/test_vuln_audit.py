"""audit(): requirements parsing, one batch, withdrawn and aliased advisories, the report."""

from __future__ import annotations

import copy
import json

import pytest

from scancache.vulndb.audit import parse_requirements

REQUIREMENTS = """\
# production pins
--prefer-binary
--index-url https://example.invalid/simple
-e git+https://example.invalid/repo.git#egg=thing
Jinja2==2.4  # old on purpose
requests[socks]==2.19.0 ; python_version >= "3"
urllib3==1.26.5 \\
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000
redis==4.5.5
flask>=2.0
werkzeug
pyyaml==6.*
certifi===2024.8.30
aiohttp==3.8.6
"""


def test_parse_requirements_pins_skips_and_notes():
    pinned, skipped = parse_requirements(REQUIREMENTS.splitlines())
    assert [(r.name, r.version, r.line) for r in pinned] == [
        ("Jinja2", "2.4", 5), ("requests", "2.19.0", 6), ("urllib3", "1.26.5", 7),
        ("redis", "4.5.5", 9), ("certifi", "2024.8.30", 13), ("aiohttp", "3.8.6", 14)]
    assert pinned[0].normalized_name == "jinja2"
    reasons = {line: reason for line, _, reason in skipped}
    assert set(reasons) == {2, 3, 4, 10, 11, 12}
    assert "--prefer-binary" in reasons[2] and "-e" in reasons[4]
    assert all("not pinned" in reasons[n] for n in (10, 11, 12))


async def test_audit_one_batch_then_free(vulndb, osv_server):
    report = await vulndb.audit(REQUIREMENTS)
    found = report.vulnerable_packages
    # One batch for every pin; then the records: a /v1/query (paged) per vulnerable package with
    # several, a GET for each of the rest, so never more requests than records.
    assert osv_server.requests["/v1/querybatch"] == 1
    record_requests = osv_server.requests["/v1/query"] + osv_server.requests["/v1/vulns"]
    assert osv_server.requests["/v1/query"] >= 1
    assert record_requests < vulndb.get_stats()["records_fetched"]
    assert set(found) == {"Jinja2", "requests", "urllib3", "aiohttp"}
    assert "PYSEC-2022-43059" not in {f.id for f in found["aiohttp"]}  # withdrawn
    assert sorted(f.id for f in found["Jinja2"]) == [
        "PYSEC-2014-8", "PYSEC-2014-82", "PYSEC-2019-217", "PYSEC-2019-220", "PYSEC-2021-66"]
    pysec = next(f for f in found["Jinja2"] if f.id == "PYSEC-2014-8")
    assert pysec.fixed_versions == ("2.7.2",) and "CVE-2014-1402" in pysec.aliases
    assert "PYSEC-2018-28" in {f.id for f in found["requests"]}
    assert report.withdrawn_ignored == 2  # redis and aiohttp advisories were withdrawn
    osv_server.reset_counts()
    again = await vulndb.audit(REQUIREMENTS)
    assert osv_server.total_requests == 0 and again.as_dict() == report.as_dict()


async def test_aliases_merge_into_one_finding(vulndb, osv_server, osv_records):
    ghsa = copy.deepcopy(osv_records["PYSEC-2014-8"])
    ghsa.update(id="GHSA-8r7q-cvjq-x353", aliases=["CVE-2014-1402"], modified="2024-01-01T00:00:00Z")
    ghsa["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "2.7.2"}]
    osv_server.set_record(ghsa)
    report = await vulndb.audit(["jinja2==2.4"])
    ids = [f.id for f in report.vulnerable]
    assert len(ids) == 5 and "GHSA-8r7q-cvjq-x353" not in ids
    merged = next(f for f in report.vulnerable if f.id == "PYSEC-2014-8")
    assert set(merged.aliases) == {"CVE-2014-1402", "GHSA-8r7q-cvjq-x353"}


async def test_report_json_and_file_input(vulndb, tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("jinja2==2.10\nrequests==2.32.0\nnot a requirement line ==\n", encoding="utf-8")
    report = await vulndb.audit(path)
    data = json.loads(report.to_json())
    assert [d["name"] for d in data["dependencies"]] == ["jinja2", "requests"]
    assert sorted(v["id"] for v in data["vulnerabilities"]) == ["PYSEC-2019-217", "PYSEC-2021-66"]
    assert data["vulnerable_packages"] == 1 and data["skipped"][0]["line"] == 3
    assert (await vulndb.audit(str(path))).as_dict() == report.as_dict()
    clean = await vulndb.audit(["requests==2.32.0"])
    assert clean.vulnerable == [] and json.loads(clean.to_json())["vulnerabilities"] == []


def test_a_shared_ghsa_does_not_merge_distinct_cves():
    from scancache.vulndb.audit import Requirement, merge_findings

    def record(vuln_id, *aliases):
        return {"id": vuln_id, "modified": "2024-01-01T00:00:00Z", "aliases": list(aliases),
                "affected": [{"package": {"ecosystem": "PyPI", "name": "accesscontrol"},
                              "ranges": [{"type": "ECOSYSTEM",
                                          "events": [{"introduced": "0"}, {"fixed": "4.3"}]}]}]}

    req = Requirement("AccessControl", "accesscontrol", "4.2", 1)
    records = [record("PYSEC-2021-335", "CVE-2021-32807", "GHSA-qcx9-j53g-ccgf"),
               record("PYSEC-2021-370", "CVE-2021-32811", "GHSA-qcx9-j53g-ccgf"),
               record("GHSA-qcx9-j53g-ccgf", "CVE-2021-32807", "CVE-2021-32811"),
               record("GHSA-zzzz-zzzz-zzzz", "CVE-2021-32811")]
    findings = merge_findings(req, records[:2])
    assert [f.id for f in findings] == ["PYSEC-2021-335", "PYSEC-2021-370"]
    assert findings[0].fixed_versions == ("4.3",)
    # the GHSA names both CVEs, so it joins both: then it is one finding, named by the PYSEC id
    assert [f.id for f in merge_findings(req, records[:3])] == ["PYSEC-2021-335"]
    merged = merge_findings(req, [records[1], records[3]])  # shared CVE: the same flaw
    assert [(f.id, f.aliases) for f in merged] == [
        ("PYSEC-2021-370", ("CVE-2021-32811", "GHSA-qcx9-j53g-ccgf", "GHSA-zzzz-zzzz-zzzz"))]


def test_fixed_versions_leave_out_git_commits():
    from scancache.vulndb.audit import Requirement, merge_findings

    record = {"id": "PYSEC-2021-335", "modified": "2024-01-01T00:00:00Z", "aliases": [],
              "affected": [{"package": {"ecosystem": "PyPI", "name": "accesscontrol"},
                            "ranges": [{"type": "GIT", "repo": "https://example.invalid/ac",
                                        "events": [{"introduced": "0"},
                                                   {"fixed": "b42dd4badf803bb9fb71ac34cd9cb0c249262f2c"}]},
                                       {"type": "ECOSYSTEM",
                                        "events": [{"introduced": "0"}, {"fixed": "4.3"},
                                                   {"introduced": "5.0"}, {"fixed": "5.2"}]}]}]}
    findings = merge_findings(Requirement("AccessControl", "accesscontrol", "4.2", 1), [record])
    assert findings[0].fixed_versions == ("4.3", "5.2")


async def test_audit_reports_progress_of_the_record_fetches(vulndb, osv_server):
    calls: list[tuple[int, int]] = []
    await vulndb.audit(REQUIREMENTS, progress=lambda done, total: calls.append((done, total)))
    fetched = vulndb.get_stats()["records_fetched"]  # by GET or with their package's /v1/query
    assert fetched > 1 and calls[0] == (0, fetched) and calls[-1] == (fetched, fetched)
    dones = [done for done, _ in calls]
    assert dones == sorted(dones) and {total for _, total in calls} == {fetched}
    calls.clear()
    await vulndb.audit(REQUIREMENTS, progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # warm: nothing to fetch, nothing to report


@pytest.mark.parametrize(("text", "names"), [
    ("# pinned for py2 \\\nflask==0.12\ndjango==1.11\n", ["flask", "django"]),  # comments never continue
    ("jinja2==2.4\t# after a tab\n", ["jinja2"]),
    ("  # indented \\\nflask==0.12\n", ["flask"]),
    ("a==1 \\\n  --hash=sha256:00\nb==2 # c\n", ["a", "b"]),
])
def test_requirements_are_read_as_pip_reads_them(text, names):
    from scancache.vulndb.audit import parse_requirements

    pinned, skipped = parse_requirements(text.splitlines())
    assert [r.name for r in pinned] == names and skipped == []
