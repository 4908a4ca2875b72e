"""The CLI's disk default per component (issue 12.11): a cache_type set in one section of the
config file keeps that section's choice and leaves the others on the CLI's disk default."""

from __future__ import annotations

import argparse

import pytest

from scancache.cli._common import load_settings
from scancache.config import CacheType


def _args(config: str | None, cache_type: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(config=config, cache_type=cache_type, cache_dir=None, redis_url=None)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    for name in ("SCANCACHE_REDIS_URL", "SCANCACHE_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCANCACHE_CACHE_DIR", str(tmp_path / "cache"))


def test_cache_type_in_one_section_leaves_the_others_on_disk(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[dns]\ncache_type = "memory"\n')
    settings = load_settings(_args(str(path)))
    assert settings.dns.cache_type is CacheType.MEMORY
    assert settings.vulndb.cache_type is CacheType.DISK  # was MEMORY: forgotten at exit
    assert settings.cache.cache_type is CacheType.DISK


def test_cache_type_under_a_seed_alias_counts_for_its_component(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("vulnerability_caching:\n  cache_type: memory\n")
    settings = load_settings(_args(str(path)))
    assert settings.vulndb.cache_type is CacheType.MEMORY
    assert settings.dns.cache_type is CacheType.DISK


def test_cache_type_in_the_shared_section_is_every_components_choice(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[cache]\ncache_type = "memory"\n[dns]\nmax_size = 10\n')
    settings = load_settings(_args(str(path)))
    assert {settings.cache.cache_type, settings.dns.cache_type, settings.vulndb.cache_type} == {
        CacheType.MEMORY}


def test_the_command_line_wins_over_every_section(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[dns]\ncache_type = "memory"\n')
    settings = load_settings(_args(str(path), cache_type="hybrid"))
    assert {settings.cache.cache_type, settings.dns.cache_type, settings.vulndb.cache_type} == {
        CacheType.HYBRID}


def test_no_config_file_means_disk_everywhere():
    settings = load_settings(_args(None))
    assert {settings.cache.cache_type, settings.dns.cache_type, settings.vulndb.cache_type} == {
        CacheType.DISK}
