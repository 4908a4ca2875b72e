"""profile_imports and `import scancache` staying cheap, both measured in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lazy_fixtures import FixtureModules
from scancache.lazyload.profile import parse_importtime, profile_imports, render_text

TESTS_DIR = str(Path(__file__).parent)

SAMPLE = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   leaf_a
import time:        50 |         50 |     deep
import time:        70 |        120 |   leaf_b
import time:       300 |        520 | parent
import time:        10 |         10 | other_root
Traceback noise that is not importtime
"""


def test_parse_importtime_builds_the_tree():
    roots = parse_importtime(SAMPLE)
    assert [r.module for r in roots] == ["parent", "other_root"]
    parent = roots[0]
    assert (parent.self_us, parent.cumulative_us) == (300, 520)
    assert [c.module for c in parent.children] == ["leaf_a", "leaf_b"]
    assert [c.module for c in parent.children[1].children] == ["deep"]
    assert parent.to_dict()["children"][1]["children"][0]["module"] == "deep"


@pytest.fixture
def fx(tmp_path):
    modules = FixtureModules(tmp_path / "mods")
    yield modules
    modules.cleanup()


def test_profile_imports_on_fixture_modules(fx):
    child = fx.allocating("child", megabytes=8)
    parent = fx.write("parent", f"import {child}\nimport time\ntime.sleep(0.02)\n")
    missing = f"{fx.prefix}_missing"
    good, bad = profile_imports([parent, missing], extra_paths=[str(fx.root), TESTS_DIR])
    assert good.ok and good.module == parent
    node = next(n for n in good.tree if n.module == parent)
    assert child in [c.module for c in node.children]
    assert node.cumulative_us >= 20_000 and good.total_us >= node.cumulative_us
    assert good.rss_mb > 8 and good.rss_delta_mb >= 6
    assert not bad.ok and "ModuleNotFoundError" in bad.error
    text = render_text([good, bad], min_us=0)
    assert parent in text and child in text and "import failed" in text
    json.dumps([good.to_dict(), bad.to_dict()])  # plain data for the CLI


HEAVY = ("redis", "httpx", "dns", "zstandard", "msgpack", "dnslib", "sqlite3")


def test_import_scancache_loads_nothing_heavy_and_names_resolve():
    code = f"""
import sys
import scancache
heavy = [m for m in {HEAVY!r} if m in sys.modules]
names = (scancache.LazyModuleLoader.__name__, scancache.LazyLoadConfig.__name__,
         scancache.LazyLoadStrategy.ON_DEMAND.value, scancache.lazy("json").dumps(1))
still_light = [m for m in {HEAVY!r} if m in sys.modules]
print(heavy, still_light, names)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=False, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] [] ('LazyModuleLoader', 'LazyLoadConfig', 'on_demand', '1')"
