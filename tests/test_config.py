"""CacheConfig validation, config files and SCANCACHE_* overrides."""

from __future__ import annotations

import pytest

from scancache.config import CacheConfig, CacheType, load_config, load_config_from_file


@pytest.mark.parametrize(
    ("field", "value"),
    [("ttl_seconds", -1), ("ttl_seconds", 0), ("max_memory_mb", 0), ("cleanup_interval", -5),
     ("max_size", "10"), ("cache_type", "floppy"), ("enable_compression", "yes"),
     ("ttl_seconds", float("nan")), ("namespace", "a:b"), ("signing_key", "short")],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CacheConfig(**{field: value})


def test_cache_type_accepts_names_and_values():
    assert CacheConfig(cache_type="DISK").cache_type is CacheType.DISK
    assert CacheConfig(cache_type="hybrid").cache_type is CacheType.HYBRID


def test_redis_requires_a_url(monkeypatch):
    monkeypatch.delenv("SCANCACHE_REDIS_URL", raising=False)
    with pytest.raises(ValueError, match="redis_url"):
        CacheConfig(cache_type=CacheType.REDIS)
    monkeypatch.setenv("SCANCACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    assert CacheConfig(cache_type=CacheType.REDIS).redis_url == "redis://127.0.0.1:1/0"


def test_toml_file_with_sections_and_env_overrides(tmp_path, monkeypatch):
    path = tmp_path / "scancache.toml"
    path.write_text(
        '[cache]\ncache_type = "disk"\nttl_seconds = 120\ncache_dir = "/tmp/from-file"\n'
        '[dns]\nmin_ttl_seconds = 2\nnameservers = ["127.0.0.1:5353"]\n'
        '[vulndb]\nosv_url = "http://127.0.0.1:1"\n'
        '[lazy]\nstrategy = "background"\npreload_modules = ["json"]\n'
    )
    monkeypatch.setenv("SCANCACHE_CACHE_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("SCANCACHE_NVD_URL", "http://127.0.0.1:2/rest/json/cves/2.0")
    config = load_config(path)
    assert config.cache.cache_type is CacheType.DISK and config.cache.ttl_seconds == 120
    assert str(config.cache.cache_dir) == str(tmp_path / "from-env")
    assert config.dns.ttl_seconds == 120 and config.dns.min_ttl_seconds == 2
    assert config.dns_caching.nameservers == ["127.0.0.1:5353"]
    assert config.vulnerability_caching.osv_url == "http://127.0.0.1:1"
    assert config.vulndb.nvd_url == "http://127.0.0.1:2/rest/json/cves/2.0"
    assert config.lazy_loading.preload_modules == ["json"]


def test_yaml_file_with_the_seed_section_names(tmp_path):
    path = tmp_path / "caching_config.yaml"
    path.write_text("dns_caching:\n  max_size: 100\n  ttl_seconds: 3600\n"
                    "vulnerability_caching:\n  max_size: 50\n  ttl_seconds: 1800\n"
                    "lazy_loading:\n  strategy: on_demand\n  memory_limit_mb: 256\n")
    config = load_config_from_file(path)
    assert config.dns_caching.max_size == 100
    assert config.vulnerability_caching.ttl_seconds == 1800
    assert config.lazy_loading.memory_limit_mb == 256


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [("c.toml", "[cache]\nttl_seconds = -3\n", "ttl_seconds"),
     ("c.toml", "[cache]\nbogus = 1\n", "bogus"),
     ("c.toml", "[nope]\n", "unknown section"),
     ("c.toml", "[cache\n", "not valid TOML"),
     ("c.yaml", "cache: [1, 2\n", "not valid YAML"),
     ("c.yaml", "- 1\n- 2\n", "top level"),
     ("c.ini", "[cache]\n", "use a .toml"),
     ("c.toml", '[dns]\nnameservers = ["not-an-ip"]\n', "nameserver")],
)
def test_bad_files_are_value_errors_that_say_where(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_config(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_a_bad_value_names_the_file_and_the_section(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[dns]\nmax_size = -1\n")
    with pytest.raises(ValueError, match=r"bad\.toml: \[dns\]: max_size"):
        load_config(path)


def test_a_cache_namespace_does_not_merge_the_components_keyspaces(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[cache]\nnamespace = "prod"\n')
    config = load_config(path)
    from scancache.dns.cache import as_dns_config
    from scancache.vulndb.cache import VulnerabilityDBCache

    assert config.cache.namespace == "prod"
    assert as_dns_config(config.dns).namespace == "dns"
    assert VulnerabilityDBCache(config.vulndb).config.namespace == "vulndb"


def test_layers_defaults_file_section_env_then_overrides(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[dns]\ncache_type = "memory"\nredis_url = "redis://file:1/0"\n')
    monkeypatch.setenv("SCANCACHE_REDIS_URL", "redis://env:1/0")
    config = load_config(path, defaults={"cache_type": "disk", "max_size": 7},
                         overrides={"max_size": 9})
    # A caller's default yields to the file, per section: only [dns] named a cache_type.
    assert config.dns.cache_type is CacheType.MEMORY
    assert config.cache.cache_type is CacheType.DISK and config.vulndb.cache_type is CacheType.DISK
    # The environment wins over every file section; overrides win over everything.
    assert {config.cache.redis_url, config.dns.redis_url, config.vulndb.redis_url} == {"redis://env:1/0"}
    assert (config.cache.max_size, config.dns.max_size, config.vulndb.max_size) == (9, 9, 9)
    assert config.lazy == load_config().lazy  # defaults and overrides are cache settings only


def test_settings_modules_do_not_import_the_file_loader():
    # The component configs sit below scancache.config (which imports them): no import circle.
    import subprocess
    import sys

    code = ("import sys, scancache.dns.config, scancache.vulndb.config, scancache.lazyload.config, "
            "scancache.cache.core; print('scancache.config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
