"""The CLI's settings (scancache._settings.load_sections): load_config's sections and errors, with a
section that cannot fail built only when a command uses it (an audit never builds DNS or lazy-loading
settings, nor imports their modules).

Every case compares against load_config itself, the reference: the same first error, word for word,
or the same section values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scancache._settings import SECTIONS, load_sections
from scancache.config import load_config

CLI = {"defaults": {"cache_type": "disk"}}  # what load_settings passes, plus its overrides

#: (config file name, its text or None for no file, SCANCACHE_* variables, overrides)
CASES = {
    "no file": (None, None, {}, {}),
    "no file, command-line options": (None, None, {}, {"cache_type": "memory", "cache_dir": "/x"}),
    "bad redis url option": (None, None, {}, {"redis_url": "not-a-url"}),
    "redis without url": (None, None, {}, {"cache_type": "redis"}),
    "bad dns variable": (None, None, {"SCANCACHE_DNS_NAMESERVERS": "not-an-ip"}, {}),
    "good dns variable": (None, None, {"SCANCACHE_DNS_NAMESERVERS": "127.0.0.1:53"}, {}),
    "bad osv variable": (None, None, {"SCANCACHE_OSV_URL": "ftp://x"}, {}),
    "osv variable with a fragment": (None, None, {"SCANCACHE_OSV_URL": "http://u:pw@x/#f"}, {}),
    "bad redis variable": (None, None, {"SCANCACHE_REDIS_URL": "nope"}, {}),
    "typo in an unused section": ("c.toml", '[dns]\nattempt = 3\n', {}, {}),
    "bad value in an unused section": ("c.toml", '[lazy]\nbackground_workers = 0\n', {}, {}),
    "bad lazy condition": ("c.toml", '[lazy_loading]\nconditions = {x = "nonsense:1"}\n', {}, {}),
    "shared ttl below dns floor": ("c.toml", '[cache]\nttl_seconds = 1\n', {}, {}),
    "shared namespace only": ("c.toml", '[cache]\nnamespace = "mine"\n', {}, {}),
    "shared cache type": ("c.yaml", "cache:\n  cache_type: memory\n", {}, {}),
    "bad vulndb value": ("c.toml", '[vulndb]\nosv_batch_size = 5000\n', {}, {}),
    "bad cache then bad dns": ("c.toml", '[cache]\nmax_size = 0\n[dns]\nattempts = 0\n', {}, {}),
    "unknown section": ("c.toml", '[dnss]\nx = 1\n', {}, {}),
    "not toml": ("c.toml", '[dns\n', {}, {}),
    "audit and alerts sections only": ("c.toml", '[audit]\nfail_on = "high"\n[alerts]\n', {}, {}),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("SCANCACHE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SCANCACHE_CACHE_DIR", str(tmp_path / "cache"))


def _outcome(load, path, overrides):
    try:
        config = load(path, defaults=CLI["defaults"], overrides=overrides)
    except ValueError as exc:
        return ("error", str(exc))
    try:
        return ("ok", {name: getattr(config, name) for name in SECTIONS})
    except ValueError as exc:  # a section built later must never fail
        return ("late error", str(exc))


@pytest.mark.parametrize("case", CASES)
def test_the_same_sections_and_errors_as_load_config(case: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    name, text, variables, overrides = CASES[case]
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    path = None
    if name is not None:
        path = str(tmp_path / name)
        Path(path).write_text(text, encoding="utf-8")
    expected = _outcome(load_config, path, overrides)
    assert _outcome(load_sections, path, overrides) == expected
    assert expected[0] in ("ok", "error")


def test_only_the_sections_that_could_fail_are_built_at_load(tmp_path: Path) -> None:
    assert set(vars(load_sections(None, **CLI))) & set(SECTIONS) == {"cache"}
    path = tmp_path / "c.toml"
    path.write_text('[dns]\nattempts = 2\n', encoding="utf-8")
    built = set(vars(load_sections(str(path), **CLI))) & set(SECTIONS)
    assert built == {"cache", "dns"}  # dns has a value of its own: checked now


def test_a_section_a_command_replaces_stays_replaced(tmp_path: Path) -> None:
    import dataclasses

    settings = load_sections(None, **CLI)
    settings.vulndb = dataclasses.replace(settings.vulndb, enable_metrics=False)
    assert settings.vulndb.enable_metrics is False


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCANCACHE_")}


def test_a_bad_value_in_a_section_audit_does_not_use_still_fails_the_audit(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[dns]\nattempts = 0\n', encoding="utf-8")
    requirements = tmp_path / "r.txt"
    requirements.write_text("idna==3.10\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "scancache", "--config", str(config), "audit", "-r",
                           str(requirements), "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, env=_env(), timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == (f"scancache: error: config file {config}: [dns]: attempts: must be an "
                           f"integer >= 1\n")


def test_reading_the_settings_of_an_audit_imports_no_dns_or_lazy_settings() -> None:
    code = """
import sys
from types import SimpleNamespace
from scancache.cli._common import load_settings
settings = load_settings(SimpleNamespace(config=None, cache_type=None, cache_dir=None, redis_url=None))
settings.vulndb
print(sorted(m for m in sys.modules if m in ("scancache.config", "scancache.dns.config",
      "scancache.lazyload.config", "scancache.cache", "pathlib", "scancache.vulndb.config")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                          timeout=60, check=True)
    assert done.stdout.strip() == "['scancache.vulndb.config']"


def test_config_equality_is_the_dataclass_one_written_once() -> None:
    import dataclasses

    from scancache.cache_config import CacheConfig
    from scancache.dns.config import DNSConfig
    from scancache.vulndb.config import VulnDBConfig

    for config_class in (CacheConfig, DNSConfig, VulnDBConfig):
        # The reference: the same fields in a dataclass whose __eq__ the dataclasses module writes.
        reference = dataclasses.make_dataclass(
            "Reference", [(f.name, object, dataclasses.field(default=None, compare=f.compare))
                          for f in dataclasses.fields(config_class)])
        names = [f.name for f in dataclasses.fields(config_class)]
        a, b = config_class(), config_class()
        assert (a == b) is True and (a != b) is False
        assert (a == b) == (reference(**{n: getattr(a, n) for n in names})
                            == reference(**{n: getattr(b, n) for n in names}))
        changed = dataclasses.replace(b, max_size=7)
        assert (a == changed) is False and (a != changed) is True
        assert a.__eq__(object()) is NotImplemented and (a == "x") is False
        with pytest.raises(TypeError):
            hash(a)  # a mutable dataclass with eq: unhashable
    assert CacheConfig() != VulnDBConfig()  # another class is never equal, whatever the fields
