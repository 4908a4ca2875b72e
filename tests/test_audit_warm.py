"""A warm audit is answered from the cache alone: no request, no event loop, two cache reads.

VulnerabilityDBCache.query_many_cached gives query_many's answers when the cache holds every one
(fresh, each record current) and None otherwise, so the caller falls back to query_many; the CLI's
audit takes that way first (issue 14: a warm run's time is start-up, imports and reading the cache).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scancache.testing.osv_server import OSVTestServer
from scancache.vulndb.audit import audit_input, audit_input_cached, read_requirements

QUERIES = [{"product": "jinja2", "version": "2.4", "ecosystem": "PyPI"},
           {"package": "requests", "ecosystem": "PyPI", "version": "2.19.0"},
           {"purl": "pkg:pypi/jinja2@3.1.4"},  # fixed: an empty answer
           {"product": "Jinja2", "version": "2.4.0", "ecosystem": "pypi"}]  # the first one again


async def test_query_many_cached_answers_as_query_many_did_without_a_request(make_vulndb, osv_server):
    vulndb = make_vulndb()
    assert vulndb.query_many_cached(QUERIES) is None  # a cold cache: nothing is asked
    assert osv_server.total_requests == 0
    online = await vulndb.query_many(QUERIES)
    sent = osv_server.total_requests
    cached = vulndb.query_many_cached(QUERIES)
    assert cached is not None
    assert [sorted(r.ids) for r in cached] == [sorted(r.ids) for r in online]
    assert cached == online  # the same records
    assert [r.source for r in cached] == ["cache"] * len(QUERIES)
    assert osv_server.total_requests == sent


async def test_query_many_cached_is_none_while_some_answer_is_missing(make_vulndb, osv_server):
    vulndb = make_vulndb()
    await vulndb.query_many(QUERIES[:2])
    assert vulndb.query_many_cached(QUERIES[:2]) is not None
    assert vulndb.query_many_cached(QUERIES) is None  # jinja2 3.1.4 was never asked
    assert len(await vulndb.query_many(QUERIES)) == len(QUERIES)  # the async twin fills it in
    assert vulndb.query_many_cached(QUERIES) is not None


async def test_query_many_cached_is_none_past_the_answers_ttl(make_vulndb, fake_clock):
    vulndb = make_vulndb(ttl_seconds=100, negative_ttl_seconds=100, stale_ttl_seconds=3600)
    await vulndb.query_many(QUERIES)
    fake_clock.advance(101)  # stale: only query_many may serve it (it asks OSV first)
    assert vulndb.query_many_cached(QUERIES) is None


async def test_query_many_cached_is_none_when_a_record_is_older_than_its_answer_says(make_vulndb):
    vulndb = make_vulndb()
    await vulndb.query_many(QUERIES[:1])
    key = vulndb._record_prefix + "PYSEC-2014-8"
    record = vulndb.cache.get(key)
    vulndb.cache.set(key, {**record, "modified": "2000-01-01T00:00:00Z"})  # outdated copy
    assert vulndb.query_many_cached(QUERIES[:1]) is None


async def test_query_many_cached_rejects_an_invalid_query_like_query_many(make_vulndb):
    vulndb = make_vulndb()
    with pytest.raises(ValueError):
        vulndb.query_many_cached([*QUERIES, {"version": "1.0"}])


async def test_audit_input_cached_reports_what_audit_input_reported(make_vulndb, osv_server):
    vulndb = make_vulndb()
    parsed = read_requirements("jinja2==2.4\nrequests==2.19.0\nidna==3.10\n")
    assert audit_input_cached(vulndb, parsed) is None
    online = await audit_input(vulndb, parsed)
    sent = osv_server.total_requests
    cached = audit_input_cached(vulndb, parsed)
    assert cached is not None and online.findings
    assert cached.as_dict() == online.as_dict()
    assert osv_server.total_requests == sent


def test_a_warm_cli_audit_reads_the_cache_with_two_statements(audit_cli, osv_server: OSVTestServer,
                                                              tmp_path: Path, sqlite_statements):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.4\nrequests==2.19.0\nidna==3.10\n", encoding="utf-8")
    code, cold, _ = audit_cli("-r", str(requirements), "--format", "json")
    assert code == 1 and osv_server.total_requests > 0
    osv_server.reset_counts()
    sqlite_statements.clear()
    code, warm, _ = audit_cli("-r", str(requirements), "--format", "json")
    assert code == 1 and warm == cold
    assert osv_server.total_requests == 0
    # One get_many for the three answers, one for every record they name; nothing written.
    reads = sqlite_statements.reads()
    assert len(reads) == 2, reads
    assert not [s for s in sqlite_statements if s.lstrip().upper().startswith(("INSERT", "UPDATE",
                                                                               "DELETE"))]


def test_canonical_pep440_spells_versions_as_packaging_does(osv_records):
    from packaging.utils import canonicalize_version

    from scancache.vulndb.ranges import canonical_pep440

    versions = {"1!2.0.0.post1.dev3+abc.1", "v1.0", "1.0.0RC1", "2.4.0-alpha", "1.0a", "0", "0.0",
                "0.0.0rc0", "1.0.post", "1.0+local.0.0", "x y", "=2.4", "2.4;x"}
    for record in osv_records.values():
        for affected in record.get("affected") or ():
            versions.update(affected.get("versions") or ())
            for rng in affected.get("ranges") or ():
                for event in rng.get("events") or ():
                    versions.update(event.values())
    assert len(versions) > 100
    assert {v: canonical_pep440(v) for v in versions} == {v: canonicalize_version(v) for v in versions}


def test_a_findings_dict_is_what_dataclasses_asdict_gives():
    import dataclasses

    from scancache.vulndb.audit import Finding

    finding = Finding("Jinja2", "2.4", "PYSEC-2014-8", ("CVE-2014-1402",), ("2.7.2",), "summary",
                      "medium", 4.4, "CVSS:3.1/AV:L", "requirements.txt:3", "PyPI")
    expected = {**dataclasses.asdict(finding), "aliases": ["CVE-2014-1402"], "fixed_versions": ["2.7.2"]}
    assert finding.as_dict() == expected
    assert list(finding.as_dict()) == [f.name for f in dataclasses.fields(Finding)]  # every field, in order


def test_an_audit_restores_the_gc_threshold_it_raised(audit_cli, tmp_path: Path, monkeypatch):
    import gc

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jinja2==2.4\n", encoding="utf-8")
    during = []
    from scancache.cli import audit

    real_run = audit._run
    monkeypatch.setattr(audit, "_run", lambda args: during.append(gc.get_threshold()) or real_run(args))
    before = gc.get_threshold()
    code, _, _ = audit_cli("-r", str(requirements))
    assert code == 1
    assert during[0][0] == 100_000  # few cyclic-GC passes over the decoded advisories
    assert gc.get_threshold() == before  # the embedding process keeps its own setting


def _findings(report):
    return [f.as_dict() for f in report.findings], report.withdrawn_ignored


async def test_a_warm_audit_reads_the_findings_derived_from_the_records_not_the_records(
        make_vulndb, osv_server, sqlite_statements, tmp_path):
    from scancache.cache_config import CacheType

    vulndb = make_vulndb(cache_type=CacheType.DISK, cache_dir=str(tmp_path / "cache"))
    parsed = read_requirements("jinja2==2.4\nJinja2==2.5\nrequests==2.19.0\nidna==3.10\n")
    online = await audit_input(vulndb, parsed)  # stores each package's derived findings
    sqlite_statements.clear()
    warm = audit_input_cached(vulndb, parsed)
    assert warm is not None and _findings(warm) == _findings(online) and warm.findings
    reads = sqlite_statements.reads()
    assert len(reads) == 2 and not any(f"'{vulndb._record_prefix}" in s for s in reads)  # no record read


async def test_a_missing_or_garbled_derivation_is_derived_again_from_the_records(make_vulndb):
    vulndb = make_vulndb()
    parsed = read_requirements("jinja2==2.4\nrequests==2.19.0\n")
    online = await audit_input(vulndb, parsed)
    from scancache.vulndb.audit import _derivations, _queries

    expected = _derivations(parsed.dependencies, await vulndb.query_many(_queries(parsed.dependencies)))
    stored = vulndb.derived(expected)
    assert stored == expected and len(stored) == 2  # what the online audit stored
    for garbage in ([0, []], [0, [["PYSEC-1", [], [], "", "low", None]]], "x", [-1, []]):
        for key in stored:
            vulndb.store_derived({key: garbage})  # a foreign writer, or an older layout
        again = audit_input_cached(vulndb, parsed)
        assert again is not None and _findings(again) == _findings(online), garbage
    assert vulndb.derived(list(stored)) == stored  # and stored again as derived from the records


async def test_a_record_due_to_be_withdrawn_later_is_never_derived_ahead(make_vulndb, osv_server,
                                                                          osv_records):
    import copy

    record = copy.deepcopy(osv_records["PYSEC-2014-8"])
    record["withdrawn"] = "2999-01-01T00:00:00Z"  # not withdrawn yet: reported today
    osv_server.records["PYSEC-2014-8"] = record
    vulndb = make_vulndb()
    parsed = read_requirements("jinja2==2.4\n")
    online = await audit_input(vulndb, parsed)
    assert "PYSEC-2014-8" in {f.id for f in online.findings} | {a for f in online.findings for a in f.aliases}
    from scancache.vulndb.audit import _derivations

    results = await vulndb.query_many([{"package": "jinja2", "ecosystem": "PyPI", "version": "2.4"}])
    assert any(r.get("withdrawn") for r in results[0])  # the record served says so
    assert _derivations(parsed.dependencies, results) == {}  # the clock decides later: not stored
    warm = audit_input_cached(vulndb, parsed)
    assert warm is not None and _findings(warm) == _findings(online)


def test_fixed_versions_above_a_pin_are_what_pep440_parsing_says(osv_records):
    import random

    from scancache.vulndb.audit import _fixed_above, _newer, _version_order
    from scancache.vulndb.ranges import pep440

    versions = sorted({value for record in osv_records.values() for affected in record.get("affected") or ()
                       for rng in affected.get("ranges") or () for event in rng.get("events") or ()
                       for value in event.values()} | {"1.0", "1.0.0", "1.0rc1", "01.2", "x", "2.4;m"})
    rng = random.Random(14)
    for _ in range(3000):
        pin, fixed = rng.choice(versions), rng.sample(versions, 4)
        current = pep440(pin)
        assert _fixed_above(pin, fixed) == [v for v in fixed if current is None or (
            (p := pep440(v)) is not None and p > current)], (pin, fixed)
        a, b = rng.choice(versions), rng.choice(versions)
        assert _newer(a, b) == (_version_order(a) > _version_order(b)), (a, b)


def test_the_json_report_text_is_json_dumps_of_each_item_one_a_line():
    import json

    from scancache.vulndb._stdlib import json_dumps
    from scancache.vulndb.audit import dumps_report

    data = {"schema_version": 1, "text": "é\u2028\x00\"\\", "empty": [], "table": {"b": 1, "a": [1.5]},
            "items": [{"name": "x\ny", "score": 0.1, "big": 10**30, "none": None, "nan": float("nan"),
                       "inf": float("-inf"), "nested": [{"k": (1, 2)}], 3: True}, "s", 2, [[]]],
            "floats": [1e300, -0.0, 5e-324]}
    pad = "  "
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            items = f",\n{pad}{pad}".join(json.dumps(item) for item in value)
            lines.append(f"{pad}{json.dumps(key)}: [\n{pad}{pad}{items}\n{pad}]")
        else:
            lines.append(f"{pad}{json.dumps(key)}: {json.dumps(value)}")
    assert dumps_report(data) == "{\n" + ",\n".join(lines) + "\n}"
    for value in (*data.values(), data, "plain", 7, None):
        assert json_dumps()(value) == json.dumps(value)
        assert json_dumps(compact=True)(value) == json.dumps(value, separators=(",", ":"))


def test_the_fix_of_a_finding_is_the_first_fixed_version_above_its_pin(osv_records):
    import random

    from scancache.vulndb.audit import _first_fixed_above, _fixed_above

    versions = sorted({value for record in osv_records.values() for affected in record.get("affected") or ()
                       for rng in affected.get("ranges") or () for event in rng.get("events") or ()
                       for value in event.values()} | {"1.0", "1.0.0", "1.0rc1", "01.2", "x", "2.4;m", "0"})
    rng = random.Random(15)
    for _ in range(3000):
        pin, fixed = rng.choice(versions), rng.sample(versions, rng.randrange(0, 5))
        above = _fixed_above(pin, fixed)
        assert _first_fixed_above(pin, fixed) == (above[0] if above else None), (pin, fixed)



def _lax_versions(count: int, seed: int) -> list[str]:
    """Versions spelled every way PEP 440 allows (and some it does not): case, separators, implicit
    numbers, post-release forms, a leading v, epochs, local parts, white space, non-ASCII digits."""
    import random

    rng = random.Random(seed)

    def sep() -> str:
        return rng.choice(["", "", ".", "-", "_", "--", " "])

    def case(text: str) -> str:
        return "".join(c.upper() if rng.random() < 0.3 else c for c in text)

    out = set()
    while len(out) < count:
        text = rng.choice(["", "", "", "v", "V"]) + ".".join(
            rng.choice(["0", "00", "1", "2", "10", "007"]) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.5:
            text += sep() + case(rng.choice(["a", "b", "rc", "c", "alpha", "beta", "pre", "preview"])) \
                + sep() + rng.choice(["", "0", "1", "01"])
        if rng.random() < 0.4:
            text += rng.choice(["-1", "-", "-0"]) if rng.random() < 0.3 else \
                sep() + case(rng.choice(["post", "rev", "r", "p"])) + sep() + rng.choice(["", "1", "3"])
        if rng.random() < 0.4:
            text += sep() + case(rng.choice(["dev", "d"])) + sep() + rng.choice(["", "0", "10"])
        text = rng.choice([text] * 30 + ["1!" + text, text + "+local.1", " " + text, text + "\n",
                                         text.replace("1", "\u0661")])
        out.add(text)
    return sorted(out)


def test_versions_read_without_packaging_are_what_packaging_reads():
    from packaging.utils import canonicalize_version
    from packaging.version import InvalidVersion, Version

    from scancache.vulndb.inputs.base import pep440_key
    from scancache.vulndb.query import _pep440_normal
    from scancache.vulndb.ranges import canonical_pep440, pep440_normal, pep440_order

    versions = _lax_versions(6000, seed=14)
    read = 0
    for text in versions:
        try:
            parsed: Version | None = Version(text)
        except InvalidVersion:
            parsed = None
        if pep440_normal(text) is not None or pep440_order(text) is not None:
            assert parsed is not None and pep440_normal(text) in (None, str(parsed)), text
            read += 1
        assert canonical_pep440(text) == (text if parsed is None else canonicalize_version(text)), text
        assert pep440_key(text) == (None if parsed is None else canonicalize_version(text)), text
        assert _pep440_normal(text) == (text if parsed is None else str(parsed)), text
    assert read > 1000  # the fast path was taken, not just the parser


def test_versions_read_without_packaging_order_as_packaging_orders_them():
    import random

    from packaging.version import Version

    from scancache.vulndb.ranges import pep440_order

    keyed = [v for v in _lax_versions(3000, seed=15) if pep440_order(v) is not None]
    assert len(keyed) > 500
    rng = random.Random(16)
    for _ in range(30000):
        a, b = rng.choice(keyed), rng.choice(keyed)
        key_a, key_b = pep440_order(a), pep440_order(b)
        assert key_a is not None and key_b is not None
        assert (key_a < key_b, key_a == key_b) == (Version(a) < Version(b), Version(a) == Version(b)), (a, b)


def _reference_dataclass(cls: type) -> type:
    """cls declared the usual way: the same fields (defaults, factories) and the dataclass flags
    cls keeps (frozen, slots), with __init__, __repr__ and __eq__ (and __hash__) generated."""
    import dataclasses

    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    spec = [(f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory))
            for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    reference = dataclasses.make_dataclass(cls.__name__, spec, frozen=params.frozen,
                                           slots="__slots__" in cls.__dict__)
    reference.__qualname__ = cls.__qualname__
    return reference


def _value_types() -> list[tuple[type, tuple[object, ...], tuple[object, ...]]]:
    """(type, arguments, other arguments) of each type scancache.vulndb._values serves."""
    import datetime

    from scancache.vulndb.audit import AuditReport, Finding
    from scancache.vulndb.inputs.base import ParsedInput, Requirement, Skipped
    from scancache.vulndb.outputs import OutputContext
    from scancache.vulndb.policy import IgnoreRule, Policy, PolicyOutcome
    from scancache.vulndb.query import Query

    req = Requirement("Jinja2", "jinja2", "2.4", 3, "r.txt")
    finding = Finding("Jinja2", "2.4", "PYSEC-1", ("CVE-1",), ("2.7",), "s", "high", 7.5, "CVSS", "r.txt:3")
    return [
        (Requirement, ("Jinja2", "jinja2", "2.4", 3), ("Jinja2", "jinja2", "2.4", 3, "r.txt", "npm")),
        (Skipped, (3, "-e .", "editable"), (3, "-e .", "editable", "editable", "r.txt")),
        (ParsedInput, (), ([req], [], ["r.txt"], 2, "uv.lock")),
        (Finding, ("p", "1", "X-1", (), ()),
         ("p", "1", "X-1", ("A",), ("2",), "s", "low", None, "", "l", "npm")),
        (IgnoreRule, ("CVE-1",), ("CVE-1", "why", datetime.date(2026, 1, 1), True, "cfg", "jinja2")),
        (Policy, (), ([IgnoreRule("CVE-1")], "high", {("jinja2", "CVE-1")}, "old.json")),
        (PolicyOutcome, ([], [], []), ([finding], [(finding, "why")], ["note"])),
        (OutputContext, (), ("1.0", [(finding, "why")], ["note"], [("a", "1", "2")])),
        (Query, ("package",), ("package", "PyPI", "jinja2", "2.4", None, None, None, None)),
        (AuditReport, (), ([req], [finding], [], 2, [("X", "bad")], ["r.txt"], "uv.lock")),
    ]


@pytest.mark.parametrize("index", range(10))
def test_a_value_type_behaves_as_the_dataclass_it_declares(index):
    import copy
    import dataclasses
    import inspect
    import pickle

    cls, args, other = _value_types()[index]
    reference = _reference_dataclass(cls)
    def parameters(of: type) -> list[tuple[str, object, str]]:
        return [(p.name, p.kind, repr(p.default)) for p in inspect.signature(of).parameters.values()]

    assert parameters(cls) == parameters(reference)  # names, order, defaults ("<factory>" too)
    assert cls.__match_args__ == reference.__match_args__  # type: ignore[attr-defined]
    for given in (args, other):
        mine, theirs = cls(*given), reference(*given)
        assert dataclasses.asdict(mine) == dataclasses.asdict(theirs)
        assert list(vars(mine) if hasattr(mine, "__dict__") else ()) == list(
            vars(theirs) if hasattr(theirs, "__dict__") else ())  # fields set in order
        if cls.__name__ not in ("ParsedInput", "AuditReport"):  # those keep their own short repr
            assert repr(mine) == repr(theirs)
        twin = cls(*given)
        assert mine == twin and mine.__ne__(twin) is False
        assert mine != cls(*(args if given is other else other))
        assert mine.__eq__(theirs) is NotImplemented  # another class: never equal
        if reference.__hash__ is None:
            assert cls.__hash__ is None
        else:
            assert hash(mine) == hash(theirs) == hash(twin)
        assert cls.__dataclass_params__.frozen == reference.__dataclass_params__.frozen  # type: ignore[attr-defined]
        if reference.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            names = [f.name for f in dataclasses.fields(cls)] + ([] if hasattr(cls, "__slots__")
                                                                 else ["not_a_field"])
            for name in names:  # (3.11's slots + frozen raises TypeError for a non-field name)
                for obj in (mine, theirs):
                    with pytest.raises(dataclasses.FrozenInstanceError, match=f"assign to field '{name}'"):
                        setattr(obj, name, None)
                    with pytest.raises(dataclasses.FrozenInstanceError, match=f"delete field '{name}'"):
                        delattr(obj, name)
        assert dataclasses.replace(mine) == mine
        # pickle and copy work as on the dataclass (a frozen one with slots needs its getstate)
        assert pickle.loads(pickle.dumps(mine)) == mine
        assert copy.copy(mine) == mine and copy.deepcopy(mine) == mine
    for frozen in (False, True):  # dataclass's rules for subclasses see the same frozen flag
        outcomes = []
        for base in (cls, reference):
            try:
                dataclasses.dataclass(frozen=frozen)(type("Sub", (base,), {"__annotations__": {}}))
                outcomes.append("ok")
            except TypeError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], outcomes
    fresh = [f.name for f in dataclasses.fields(cls) if f.default_factory is not dataclasses.MISSING]
    for name in fresh:  # a new list (or set) for every instance
        assert getattr(cls(*args), name) is not getattr(cls(*args), name)
    if fresh:  # an explicit None is kept, as the generated __init__ keeps it
        assert getattr(cls(**{fresh[0]: None}), fresh[0]) is None


def test_a_release_too_long_for_int_is_an_error_not_a_clean_audit(tmp_path: Path):
    """A pin whose release has more digits than int() converts (4300 by default) cannot be read by
    packaging: reading the input fails (as before the canonical-pin shortcut), it is never audited
    as written, where a server that cannot order it either answers "not affected" (exit 0)."""
    from scancache.vulndb.inputs.base import pep440_key

    version = "1." + "9" * 5000
    with pytest.raises(ValueError):
        pep440_key(version)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"jinja2=={version}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="digits"):
        read_requirements(requirements)
    assert pep440_key("1." + "9" * 600) == "1." + "9" * 600  # long, but as int() reads it


def test_equal_fixed_versions_are_listed_in_the_same_order_by_every_run():
    """"1.0" and "1.0.0" are one version: their order in fixed_versions (and so which one a fix
    names) is the text's, the same in every process, not a set's, which the hash seed changes."""
    import os
    import subprocess
    import sys

    code = ("from scancache.vulndb.audit import _sort_versions as s; "
            "print(s(['1.0', '1.0.0', '0.9']), s(['2.0rc1', '2.0.0rc1', '1']))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
               for seed in range(12)}
    assert outputs == {"('0.9', '1.0', '1.0.0') ('1', '2.0.0rc1', '2.0rc1')\n"}
