"""LazyModuleLoader: strategies, single imports, timeouts, failures, budgets and monitoring."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time
import traceback

import pytest

from lazy_fixtures import FixtureModules, counts
from scancache.errors import ModuleLoadRefused
from scancache.lazyload.config import LazyLoadConfig, LazyLoadStrategy
from scancache.lazyload.loader import LazyModuleLoader


@pytest.fixture
def fx(tmp_path, monkeypatch):
    monkeypatch.delenv("SCANCACHE_EAGER", raising=False)  # these tests are about laziness
    modules = FixtureModules(tmp_path / "mods")
    yield modules
    modules.cleanup()


async def wait_until(predicate, timeout: float = 5.0) -> None:
    """Poll a state change made by another thread (not an expiry): fail if it never happens."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "state never reached"
        await asyncio.sleep(0.005)


def config(**overrides) -> LazyLoadConfig:
    overrides.setdefault("memory_limit_mb", 100_000)  # budgets are tested on their own
    return LazyLoadConfig(**overrides)


# ---- on demand ---------------------------------------------------------------------------------

async def test_on_demand_loads_in_worker_and_records_monitoring(fx):
    name = fx.counter()
    async with LazyModuleLoader(config()) as loader:
        assert name not in sys.modules  # ON_DEMAND: nothing at enter
        module = await loader.load_module(name)
        assert module is sys.modules[name] and module.VALUE == 42
        assert await loader.load_module(name) is module  # cached, not re-executed
        data = loader.get_monitoring_data()
    assert counts.EXECUTIONS[name] == 1
    record = data["modules"][name]
    assert record["status"] == "loaded"
    assert record["strategy"] == "on_demand"
    assert record["thread"] == f"scancache-lazy:{name}"  # ran in a worker, not on the loop thread
    assert record["load_seconds"] > 0
    assert record["memory_delta_mb"] is not None
    assert record["tracemalloc_delta_mb"] is None  # trace_memory is off by default
    assert record["attempts"] == 1
    assert data["current_memory_mb"] > 1
    assert data["loaded_count"] == 1 and data["failed_count"] == 0
    assert data["strategy"] == "on_demand"


async def test_concurrent_requests_share_one_import(fx):
    name = fx.slow(seconds=0.2)
    loader = LazyModuleLoader(config())
    modules = await asyncio.gather(*(loader.load_module(name) for _ in range(10)))
    assert all(m is modules[0] for m in modules) and modules[0].VALUE == "slow"
    assert counts.EXECUTIONS[name] == 1
    assert loader.get_monitoring_data()["modules"][name]["attempts"] == 1
    await loader.aclose()


async def test_event_loop_keeps_running_during_a_slow_import(fx):
    name = fx.slow(seconds=0.4)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    async with LazyModuleLoader(config()) as loader:
        await loader.load_module(name)
    task.cancel()
    assert ticks >= 10  # ~40 expected; a blocked loop would give 0 or 1


async def test_timeout_raises_and_a_later_request_joins_the_same_import(fx):
    name = fx.gated()
    loader = LazyModuleLoader(config(load_timeout=0.05))
    with pytest.raises(TimeoutError, match="load_timeout"):
        await loader.load_module(name)
    assert loader.get_monitoring_data()["modules"][name]["status"] == "loading"
    pending = asyncio.ensure_future(LazyModuleLoader.load_module(loader, name))
    await asyncio.sleep(0)
    counts.gate(name).set()
    try:
        module = await pending
    except TimeoutError:  # a very slow machine: the import is still finishing, join it once more
        module = await loader.load_module(name)
    assert module.VALUE == "gated"
    assert counts.EXECUTIONS[name] == 1  # joined, never started twice
    assert loader.get_monitoring_data()["modules"][name]["attempts"] == 1
    loader.close()


# ---- failures ----------------------------------------------------------------------------------

async def test_failed_import_keeps_type_and_traceback_and_leaves_no_half_module(fx):
    name = fx.failing()
    loader = LazyModuleLoader(config())
    with pytest.raises(ValueError, match="boom from fixture") as info:
        await loader.load_module(name)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(frame.filename == str(fx.path_of(name)) and frame.line.startswith("raise")
               for frame in frames)
    assert name not in sys.modules
    record = loader.get_monitoring_data()["modules"][name]
    assert record["status"] == "failed" and record["error"].startswith("ValueError: boom")
    assert loader.get_monitoring_data()["failed_count"] == 1
    # A failure is not cached: the next request retries (as `import` would).
    with pytest.raises(ValueError):
        loader.load(name)
    assert counts.EXECUTIONS[name] == 2
    assert loader.get_monitoring_data()["modules"][name]["attempts"] == 2


async def test_failing_submodule_and_importer_leave_nothing_behind(fx):
    package, sub = fx.failing_submodule()
    importer = fx.importer_of("importer", sub)
    loader = LazyModuleLoader(config())
    with pytest.raises(RuntimeError, match="bad submodule"):
        await loader.load_module(importer)
    assert importer not in sys.modules and sub not in sys.modules
    assert package in sys.modules  # the package itself imported fine and is complete
    assert not hasattr(sys.modules[package], "bad")


async def test_required_false_returns_none_only_for_that_missing_module(fx):
    loader = LazyModuleLoader(config())
    missing = f"{fx.prefix}_does_not_exist"
    assert await loader.load_module(missing, required=False) is None
    assert loader.load(f"{missing}.sub", required=False) is None
    assert loader.get_monitoring_data()["modules"][missing]["status"] == "missing"
    with pytest.raises(ModuleNotFoundError):
        await loader.load_module(missing)
    broken = fx.importer_of("broken", f"{fx.prefix}_absent_dependency")
    with pytest.raises(ModuleNotFoundError):  # its dependency is missing, not the module: an error
        await loader.load_module(broken, required=False)
    assert loader.get_monitoring_data()["modules"][broken]["status"] == "failed"


async def test_memory_budget_refuses_new_imports_only(fx):
    name = fx.counter()
    loader = LazyModuleLoader(LazyLoadConfig(memory_limit_mb=1))
    with pytest.raises(ModuleLoadRefused, match="memory_limit_mb=1") as info:
        await loader.load_module(name)
    assert isinstance(info.value, ImportError) and info.value.name == name
    assert counts.EXECUTIONS[name] == 0 and name not in sys.modules
    data = loader.get_monitoring_data()
    assert data["modules"][name]["status"] == "refused" and data["refused_count"] == 1
    assert await loader.load_module("json") is sys.modules["json"]  # already imported: no cost


# ---- strategies --------------------------------------------------------------------------------

async def test_preload_strategy_imports_at_enter_and_records_failures(fx):
    good, other, bad = fx.counter("a"), fx.counter("b"), fx.failing("bad")
    cfg = config(strategy=LazyLoadStrategy.PRELOAD, preload_modules=[good, other, bad])
    async with LazyModuleLoader(cfg) as loader:
        assert good in sys.modules and other in sys.modules  # awaited by __aenter__
        data = loader.get_monitoring_data()
        assert data["modules"][good]["strategy"] == "preload"
        assert data["modules"][bad]["status"] == "failed"
        with pytest.raises(ValueError):  # on demand, the failure is raised
            await loader.load_module(bad)
    assert counts.EXECUTIONS[good] == counts.EXECUTIONS[other] == 1


def test_preload_strategy_sync_start(fx):
    name = fx.counter()
    with LazyModuleLoader(config(strategy="preload", preload_modules=[name])) as loader:
        assert name in sys.modules
        assert loader.get_monitoring_data()["modules"][name]["thread"] == threading.current_thread().name
    with pytest.raises(ModuleLoadRefused, match="closed"):
        loader.load(name)


async def test_background_strategy_serves_demand_first(fx):
    blocker, queued = fx.gated("blocker"), fx.counter("queued")
    cfg = config(strategy=LazyLoadStrategy.BACKGROUND, preload_modules=[blocker, queued],
                 background_workers=1)
    loader = LazyModuleLoader(cfg)
    await loader.astart()
    await wait_until(lambda: counts.EXECUTIONS[blocker] == 1)  # the only worker is busy
    assert loader.get_monitoring_data()["modules"][queued]["status"] == "queued"
    module = await loader.load_module(queued)  # not stuck behind the queue
    assert module.VALUE == 42
    record = loader.get_monitoring_data()["modules"][queued]
    assert record["strategy"] == "on_demand" and record["thread"] == f"scancache-lazy:{queued}"
    # Demand for the module the worker is importing joins that import.
    joined = asyncio.ensure_future(loader.load_module(blocker))
    await asyncio.sleep(0.01)
    assert not joined.done()
    counts.gate(blocker).set()
    assert (await joined).VALUE == "gated"
    await loader.aclose()
    data = loader.get_monitoring_data()
    assert data["modules"][blocker]["thread"] == "scancache-lazy-bg-0"
    assert data["modules"][blocker]["strategy"] == "background"
    assert counts.EXECUTIONS[blocker] == counts.EXECUTIONS[queued] == 1  # worker skipped `queued`


async def test_background_strategy_loads_everything_queued(fx):
    names = [fx.counter(f"m{i}") for i in range(5)]
    cfg = config(strategy=LazyLoadStrategy.BACKGROUND, preload_modules=names, background_workers=2)
    async with LazyModuleLoader(cfg) as loader:
        await wait_until(lambda: loader.get_monitoring_data()["loaded_count"] == 5)
    assert all(counts.EXECUTIONS[n] == 1 for n in names)
    threads = {loader.get_monitoring_data()["modules"][n]["thread"] for n in names}
    assert threads <= {"scancache-lazy-bg-0", "scancache-lazy-bg-1"}


async def test_conditional_strategy_loads_only_where_the_condition_holds(fx, monkeypatch):
    by_env, by_platform, by_predicate = fx.counter("env"), fx.counter("plat"), fx.counter("pred")
    monkeypatch.delenv("SCANCACHE_TEST_FLAG", raising=False)
    cfg = config(strategy=LazyLoadStrategy.CONDITIONAL,
                 preload_modules=[by_env, by_platform, by_predicate],
                 conditions={by_env: "env:SCANCACHE_TEST_FLAG"})
    loader = LazyModuleLoader(cfg)
    loader.add_condition(by_platform, platform=sys.platform[:3])
    allowed = False
    loader.add_condition(by_predicate, lambda: allowed)
    async with loader:
        assert by_platform in sys.modules
        assert by_env not in sys.modules and by_predicate not in sys.modules
        assert loader.get_monitoring_data()["modules"][by_env]["status"] == "skipped"
        with pytest.raises(ModuleLoadRefused, match="env:SCANCACHE_TEST_FLAG"):
            await loader.load_module(by_env)
        monkeypatch.setenv("SCANCACHE_TEST_FLAG", "1")  # conditions are checked at each request
        assert (await loader.load_module(by_env)).VALUE == 42
        allowed = True
        assert (await loader.load_module(by_predicate)).VALUE == 42
    assert counts.EXECUTIONS[by_env] == counts.EXECUTIONS[by_predicate] == 1


def test_condition_rules_are_validated():
    with pytest.raises(ValueError, match=r"conditions\.x"):
        LazyLoadConfig(conditions={"x": "cpu:fast"})
    loader = LazyModuleLoader(config())
    with pytest.raises(ValueError):
        loader.add_condition("x")
    loader.add_condition("json", "not:module:json")  # json is imported, so this refuses it
    with pytest.raises(ModuleLoadRefused, match="not:module:json"):
        loader.load("json")


# ---- threads and imports -----------------------------------------------------------------------

async def test_load_from_inside_a_worker_import_runs_inline(fx, monkeypatch):
    dep = fx.counter("dep")
    outer = fx.calls_hook("outer", dep)
    loader = LazyModuleLoader(config(load_timeout=5))
    monkeypatch.setattr(counts, "HOOK", loader.load)
    module = await loader.load_module(outer)
    assert module.DEP.VALUE == 42
    data = loader.get_monitoring_data()["modules"]
    assert data[dep]["thread"] == data[outer]["thread"] == f"scancache-lazy:{outer}"


async def test_circular_modules_requested_concurrently_do_not_deadlock(fx):
    a_name, b_name = fx.circular()
    loader = LazyModuleLoader(config(load_timeout=5))
    a, b = await asyncio.gather(loader.load_module(a_name), loader.load_module(b_name))
    assert a.ping() == 2 and b.pong() == 1
    assert counts.EXECUTIONS[a_name] == counts.EXECUTIONS[b_name] == 1


def test_sync_load_waits_for_an_import_running_in_another_thread(fx):
    name = fx.gated()
    loader = LazyModuleLoader(config(load_timeout=5))
    first = threading.Thread(target=loader.load, args=(name,))
    first.start()
    while counts.EXECUTIONS[name] == 0:
        time.sleep(0.005)  # poll for the other thread's progress, not for an expiry
    threading.Timer(0.05, counts.gate(name).set).start()
    assert loader.load(name).VALUE == "gated"
    first.join(5)
    assert counts.EXECUTIONS[name] == 1


async def test_main_thread_modules_import_on_the_loop_thread(fx):
    name = fx.counter("signals")
    other = fx.counter("signals2")
    loader = LazyModuleLoader(config(main_thread_modules=[name, other]))
    await loader.load_module(name)
    assert counts.EVENTS[-1] == (name, threading.main_thread().name)
    errors: list[BaseException] = []

    def from_thread() -> None:
        try:
            loader.load(other)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=from_thread)
    thread.start()
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ModuleLoadRefused)
    assert "main thread" in str(errors[0]) and other not in sys.modules


async def test_trace_memory_measures_allocations(fx):
    import tracemalloc

    name = fx.allocating(megabytes=4)
    async with LazyModuleLoader(config(trace_memory=True)) as loader:
        await loader.load_module(name)
        record = loader.get_monitoring_data()["modules"][name]
    assert record["tracemalloc_delta_mb"] >= 3.5
    assert record["memory_delta_mb"] is not None
    assert not tracemalloc.is_tracing()  # the loader stops what it started


async def test_closed_loader_refuses(fx):
    name = fx.counter()
    loader = LazyModuleLoader(config())
    async with loader:
        pass
    with pytest.raises(ModuleLoadRefused, match="closed"):
        await loader.load_module(name)
    assert counts.EXECUTIONS[name] == 0


def test_load_from_a_module_body_never_waits_on_another_threads_import(fx, monkeypatch):
    """Main thread imports M, whose body loads D; D is mid-import in another thread and imports M.

    Waiting on D's job would deadlock (that thread needs M's import lock, held here) until the
    timeout; joining through the import system lets its deadlock detection resolve the cycle.
    """
    main_name = f"{fx.prefix}_m"
    dep = fx.write("d", f"_counts.gate(__name__).wait(10)\nimport {main_name}\nVALUE = 'dep'\n")
    fx.calls_hook("m", dep)
    loader = LazyModuleLoader(config(load_timeout=3))
    monkeypatch.setattr(counts, "HOOK", loader.load)
    other = threading.Thread(target=loader.load, args=(dep,), name="other-importer")
    other.start()
    while counts.EXECUTIONS[dep] == 0:
        time.sleep(0.005)  # poll for the other thread's progress, not for an expiry
    threading.Timer(0.1, counts.gate(dep).set).start()
    started = time.monotonic()
    module = importlib.import_module(main_name)
    assert time.monotonic() - started < 2  # not the 3 s load_timeout of a deadlocked wait
    other.join(5)
    assert module.DEP.VALUE == "dep"
    assert counts.EXECUTIONS[dep] == counts.EXECUTIONS[main_name] == 1


def test_inside_import_is_detected_for_plain_imports(fx, monkeypatch):
    from scancache.lazyload.importstate import inside_import

    monkeypatch.setattr(counts, "HOOK", lambda _name: inside_import())
    name = fx.calls_hook("probe", "unused")
    assert importlib.import_module(name).DEP is True
    assert inside_import() is False


@pytest.mark.parametrize("cache_loaded", [True, False])
async def test_cache_loaded_modules_decides_who_keeps_the_module(fx, cache_loaded):
    name = fx.counter()
    loader = LazyModuleLoader(config(cache_loaded_modules=cache_loaded))
    first = await loader.load_module(name)
    del sys.modules[name]  # someone forgets it (a reload harness, a test)
    second = await loader.load_module(name)
    if cache_loaded:  # the loader hands out the module it holds
        assert second is first and counts.EXECUTIONS[name] == 1
    else:  # the loader holds nothing: sys.modules decides, so it imports afresh
        assert second is not first and counts.EXECUTIONS[name] == 2


async def test_background_never_imports_main_thread_modules(fx):
    name = fx.counter("signals")
    cfg = config(strategy="background", preload_modules=[name], main_thread_modules=[name])
    async with LazyModuleLoader(cfg) as loader:
        assert loader.get_monitoring_data()["modules"][name]["status"] == "skipped"
        await loader.load_module(name)
    assert counts.EVENTS[-1] == (name, threading.main_thread().name)


async def test_eager_mode_turns_background_into_preload(fx, monkeypatch):
    names = [fx.counter("e1"), fx.counter("e2")]
    monkeypatch.setenv("SCANCACHE_EAGER", "1")
    async with LazyModuleLoader(config(strategy="background", preload_modules=names)) as loader:
        assert all(n in sys.modules for n in names)  # imported by __aenter__, not later by workers
        assert {loader.get_monitoring_data()["modules"][n]["strategy"] for n in names} == {"preload"}
