"""lazy(name): first-touch races, what triggers the import, eager mode, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import traceback
import types

import pytest

from lazy_fixtures import FixtureModules, counts
from scancache.lazyload.proxy import LazyModule, is_lazy, is_loaded, lazy


@pytest.fixture
def fx(tmp_path, monkeypatch):
    monkeypatch.delenv("SCANCACHE_EAGER", raising=False)
    modules = FixtureModules(tmp_path / "mods")
    yield modules
    modules.cleanup()


def test_twenty_threads_touching_first_at_once_import_once(fx):
    name = fx.write("racy", "import time\ntime.sleep(0.05)\nVALUE = 42\n")
    proxy = lazy(name)
    barrier = threading.Barrier(20)
    seen: list[object] = []
    errors: list[BaseException] = []

    def touch() -> None:
        try:
            barrier.wait(5)
            seen.append(proxy.VALUE)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=touch) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert seen == [42] * 20
    assert counts.EXECUTIONS[name] == 1


def test_nothing_is_imported_until_an_attribute_is_used(fx):
    name = fx.side_effect()
    proxy = lazy(name)
    assert isinstance(proxy, types.ModuleType) and is_lazy(proxy) and not is_loaded(proxy)
    assert repr(proxy) == f"<lazy module {name!r} (not loaded)>"
    assert proxy.__name__ == name  # known without importing
    assert counts.EXECUTIONS[name] == 0 and name not in sys.modules
    assert proxy.PID > 0
    assert counts.EXECUTIONS[name] == 1 and is_loaded(proxy)
    assert "loaded" in repr(proxy) and name in repr(proxy)
    assert "PID" in dir(proxy)
    assert vars(proxy) is sys.modules[name].__dict__
    assert proxy.__spec__ is sys.modules[name].__spec__


def test_dir_triggers_the_import(fx):
    name = fx.counter()
    proxy = lazy(name)
    assert "VALUE" in dir(proxy)
    assert counts.EXECUTIONS[name] == 1


# A module-level name bound to a stand-in is rebound to the real module after the first use.
module_level_proxy: types.ModuleType | None = None


def test_module_global_is_swapped_for_the_real_module(fx):
    global module_level_proxy
    name = fx.counter()
    module_level_proxy = lazy(name)
    assert isinstance(module_level_proxy, LazyModule)
    assert module_level_proxy.VALUE == 42
    assert module_level_proxy is sys.modules[name]
    assert not isinstance(module_level_proxy, LazyModule)
    module_level_proxy = None


def test_setattr_reaches_the_real_module(fx):
    name = fx.counter()
    proxy = lazy(name)
    proxy.VALUE = 7
    assert sys.modules[name].VALUE == 7 and proxy.VALUE == 7
    del proxy.VALUE
    assert not hasattr(sys.modules[name], "VALUE")


def test_already_imported_module_is_returned_as_is():
    assert lazy("json") is sys.modules["json"]


def test_eager_mode_imports_at_once(fx, monkeypatch):
    name = fx.counter()
    monkeypatch.setenv("SCANCACHE_EAGER", "1")
    module = lazy(name)
    assert module is sys.modules[name] and not is_lazy(module)
    assert counts.EXECUTIONS[name] == 1


def test_failing_module_raises_on_each_touch_and_leaves_nothing(fx):
    name = fx.failing()
    proxy = lazy(name)
    with pytest.raises(ValueError, match="boom from fixture") as info:
        _ = proxy.HALF
    assert any(f.filename == str(fx.path_of(name)) for f in traceback.extract_tb(info.value.__traceback__))
    assert name not in sys.modules
    with pytest.raises(ValueError):
        _ = proxy.helper
    assert counts.EXECUTIONS[name] == 2
    assert "not loaded" in repr(proxy)


def test_missing_module_raises_on_first_use(fx):
    proxy = lazy(f"{fx.prefix}_missing")
    with pytest.raises(ModuleNotFoundError):
        _ = proxy.anything


def test_scancache_lazy_is_the_function_in_either_import_order():
    code = """
import sys
import types
import scancache
{first}
from scancache import lazy
assert isinstance(scancache.lazy, types.FunctionType) and lazy is scancache.lazy
stand_in = lazy("xml.dom.minidom")
assert "xml.dom.minidom" not in sys.modules
assert stand_in.parseString("<a/>").documentElement.tagName == "a"
assert scancache.lazy("json").dumps([1]) == "[1]"
print("ok")
"""
    for first in ("", "from scancache.lazyload.loader import LazyModuleLoader"):
        env = {k: v for k, v in os.environ.items() if k != "SCANCACHE_EAGER"}
        done = subprocess.run([sys.executable, "-c", code.format(first=first)], capture_output=True,
                              text=True, timeout=60, check=False, env=env)
        assert done.stdout.strip() == "ok", done.stderr
