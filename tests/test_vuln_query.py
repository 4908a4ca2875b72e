"""Query validation and canonical keys; version range evaluation (PEP 440 and semver)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scancache.vulndb.query import KNOWN_FIELDS, Query, parse_purl, parse_query
from scancache.vulndb.ranges import in_events, parse_semver, record_affects


@pytest.mark.parametrize("query", [
    {"product": "Jinja2", "ecosystem": "pypi", "version": "2.4.0"},
    {"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"},
    {"package": {"name": "JINJA2", "ecosystem": "PyPI"}, "version": "2.4"},
    {"purl": "pkg:pypi/jinja2@2.4"},
    {"package": {"purl": "pkg:pypi/Jinja2@v2.4"}},
    {"product": "jinja2", "package": "jinja2", "ecosystem": "PyPI", "version": "2.4.0.0"},
])
def test_equal_questions_share_one_key(query):
    reference = parse_query({"product": "jinja2", "ecosystem": "PyPI", "version": "2.4"})
    assert parse_query(query).key == reference.key
    assert len(reference.key) == 64


def test_different_questions_have_different_keys():
    keys = {parse_query(q).key for q in [
        {"product": "jinja2", "ecosystem": "PyPI", "version": "2.4"},
        {"product": "jinja2", "ecosystem": "PyPI", "version": "2.4.1"},
        {"product": "jinja2", "ecosystem": "PyPI"},
        {"product": "jinja2", "ecosystem": "npm", "version": "2.4"},
        {"product": "jinja2"},
        {"cve_id": "CVE-2014-1402"},
        {"keyword": "jinja2"},
        {"commit": "abcdef1234567"},
    ]}
    assert len(keys) == 8


def test_cve_label_does_not_change_the_question():
    expected = Query("cve", cve_id="CVE-2021-44228")
    assert parse_query({"cve_id": "cve-2021-44228", "product": "log4j"}) == expected


@pytest.mark.parametrize("purl,expected", [
    ("pkg:pypi/django@1.11", ("PyPI", "django", "1.11")),
    ("pkg:npm/%40babel/core@7.0.0", ("npm", "@babel/core", "7.0.0")),
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar",
     ("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")),
    ("pkg:golang/github.com/gin-gonic/gin@v1.6.0", ("Go", "github.com/gin-gonic/gin", "v1.6.0")),
    ("pkg:cargo/smallvec", ("crates.io", "smallvec", None)),
])
def test_parse_purl(purl, expected):
    assert parse_purl(purl) == expected


@pytest.mark.parametrize("query,message", [
    ({"product": "x", "colour": "red"}, "unknown field.*colour"),
    ({}, "empty query"),
    ({"version": "1.0"}, "need a package"),
    ({"ecosystem": "PyPI"}, "need a package"),
    ({"purl": "pkg:pypi/a@1", "version": "2"}, "version twice"),
    ({"purl": "pkg:pypi/a", "ecosystem": "npm"}, "contradicts"),
    ({"purl": "pkg:pypi/a", "product": "a"}, "package twice"),
    ({"cve_id": "CVE-2021-1", "version": "1"}, "cannot be combined with version"),
    ({"cve_id": "log4shell"}, "must look like CVE"),
    ({"commit": "zzz"}, "hex git hash"),
    ({"commit": "abcdef1", "product": "a", "version": "1"}, "'commit' and 'version'"),
    ({"keyword": "x", "product": "a"}, "cannot be combined"),
    ({"cpe": "apache:log4j"}, "CPE 2.3"),
    ({"product": 42}, "must be a string"),
    ({"product": " "}, "non-empty"),
    ({"package": {"name": "a", "colour": 1}}, "unknown key"),
    ({"purl": "pkg:unknowntype/a@1"}, "unsupported package type"),
    ("jinja2", "a query is a dict"),
])
def test_invalid_queries_name_the_problem(query, message):
    with pytest.raises(ValueError, match=message):
        parse_query(query)


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                    st.lists(st.text(max_size=5), max_size=2),
                    st.dictionaries(st.sampled_from(["name", "ecosystem", "purl", "x"]),
                                    st.text(max_size=10), max_size=3))
_keys = st.one_of(st.sampled_from(sorted(KNOWN_FIELDS)), st.text(max_size=8))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_arbitrary_dicts_give_a_query_or_value_error(query):
    try:
        parsed = parse_query(query)
    except ValueError:
        return
    assert parsed.kind in ("package", "commit", "cve", "nvd")
    assert parse_query(dict(reversed(list(query.items())))).key == parsed.key  # order-free
    assert len(parsed.key) == 64 and set(parsed.key) <= set("0123456789abcdef")


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({"product": st.from_regex(r"[A-Za-z][A-Za-z0-9._-]{0,15}", fullmatch=True),
                              "version": st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True)}))
def test_pypi_spelling_variants_share_a_key(query):
    base = parse_query({**query, "ecosystem": "PyPI"})
    variant = parse_query({"package": query["product"].upper().replace("-", "_"), "ecosystem": "pypi",
                           "version": query["version"] + ".0"})
    assert variant.key == base.key


# ---------------------------------------------------------------------------- ranges


def test_semver_order():
    order = ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "v2.0.0"]
    parsed = [parse_semver(v) for v in order]
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed)
    assert parse_semver("1.0.0+build.5") == parse_semver("1.0.0")
    assert parse_semver("not.a.version") is None


@pytest.mark.parametrize("version,expected", [
    ("0.5.0", False), ("1.0.0", True), ("1.4.9", True), ("1.5.0", False),
    ("2.0.0-rc.1", False), ("2.0.0", True), ("2.1.0", True), ("2.1.1", False), ("3.0.0", False),
])
def test_semver_events(version, expected):
    events = [{"introduced": "1.0.0"}, {"fixed": "1.5.0"}, {"introduced": "2.0.0"},
              {"last_affected": "2.1.0"}]
    assert in_events(parse_semver(version), events, parse_semver) is expected


def test_record_affects_pep440_versions_list_and_ecosystem_ranges():
    record = {"id": "X", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "Foo_Bar"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.2"}]},
                    {"type": "GIT", "events": [{"introduced": "abc1234"}]}],
         "versions": ["0.5"]},
        {"package": {"ecosystem": "npm", "name": "left-pad"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]},
    ]}
    yes = {"ecosystem": "PyPI", "name": "foo-bar"}
    assert record_affects(record, **yes, version="1.0.0")  # PEP 440: 1.0.0 == 1.0
    assert record_affects(record, **yes, version="1.1.post1")
    assert record_affects(record, **yes, version="0.5.0")  # from the versions list
    assert not record_affects(record, **yes, version="1.2")
    assert not record_affects(record, **yes, version="0.9")
    assert record_affects(record, **yes)  # no version: every record of the package
    assert not record_affects(record, ecosystem="npm", name="foo-bar", version="1.0")
    assert record_affects(record, ecosystem="npm", name="left-pad", version="1.2.9")
    assert not record_affects(record, ecosystem="npm", name="left-pad", version="1.3.0")
    assert record_affects(record, ecosystem=None, name=None, commit="abc1234")
    assert not record_affects(record, ecosystem=None, name=None, commit="def5678")
