"""The plugin author's checklist (as datasette keeps one): every hook has a docstring, a
section in docs/plugins.md and a test that implements it; the example plugin the page
shows is the real, small one under examples/plugin_author.

The store hooks are implemented by no other test, so their tests live here.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs import testing
from brains_jobs.artifacts import ArtifactNotFound
from brains_jobs.plugins import hookspecs
from brains_jobs.plugins.hookspecs import RegisterArtifactStore, RegisterStore
from brains_jobs.plugins.host import PluginHost
from brains_jobs.store import Store, StoreOptions
from brains_jobs.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "plugin_author"
TEST_DIRS = [ROOT / "tests", *sorted((ROOT / "plugins").glob("*/tests"))]

HOOKS = sorted(
    name
    for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, "brains_jobs_spec")
)


def test_the_hooks_are_found() -> None:
    assert "brains_jobs_register_jobs" in HOOKS and len(HOOKS) >= 5


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 20, f"{hook} in hookspecs.py needs a docstring saying what to register"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_described_in_the_plugins_page(hook: str) -> None:
    assert re.search(rf"^### `{hook}\(", DOC.read_text(), re.MULTILINE), (
        f"docs/plugins.md needs a section headed ### `{hook}(...)`"
    )


def test_the_plugins_page_names_no_other_hooks() -> None:
    named = set(re.findall(r"\bbrains_jobs_register_\w+", DOC.read_text()))
    unknown = named - set(HOOKS)
    assert not unknown, f"docs/plugins.md names hooks that do not exist: {unknown}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_by_a_test(hook: str) -> None:
    pattern = re.compile(rf"^\s*def {hook}\(", re.MULTILINE)
    implementations = [
        path
        for folder in TEST_DIRS
        for path in folder.rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert implementations, f"no test implements {hook}: write one that does"


# -- the example plugin on the page is the real one ------------------------------------

_SHOWN = re.compile(r"^<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)^```$", re.M | re.S)


def test_the_page_shows_the_example_files_as_they_are() -> None:
    shown = {m["path"]: m["code"] for m in _SHOWN.finditer(DOC.read_text())}
    expected = {
        f"examples/plugin_author/{name}"
        for name in ("pyproject.toml", "brains_jobs_hello.py", "test_hello.py")
    }
    assert expected <= shown.keys(), f"docs/plugins.md should show {expected - shown.keys()}"
    for path, code in shown.items():
        assert code == (ROOT / path).read_text(), f"docs/plugins.md shows an old {path}"


def test_the_example_plugin_is_small() -> None:
    module = (EXAMPLE / "brains_jobs_hello.py").read_text().splitlines()
    test = (EXAMPLE / "test_hello.py").read_text().splitlines()
    assert len(module) < 30, f"the example plugin has {len(module)} lines"
    assert len(test) < 15, f"the example plugin's test has {len(test)} lines"
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    assert '[project.entry-points.brains_jobs]\nhello = "brains_jobs_hello"' in pyproject


# -- the store hooks, exercised ------------------------------------------------------


class MemoryArtifacts(bj.ArtifactStore):
    """Artifacts in a dict: enough to show that the hook's store is the one used."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def write(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    async def read(self, key: str) -> bytes:
        try:
            return self.blobs[key]
        except KeyError:
            raise ArtifactNotFound(key) from None

    async def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self.blobs if k.startswith(f"{prefix}/")]
        for key in keys:
            del self.blobs[key]
        return len(keys)


class Text(BaseModel):
    text: str


class Kept(BaseModel):
    ref: bj.ArtifactRef


@bj.job("hooks.keep", max_attempts=1)
async def keep(ctx: bj.JobContext, inp: Text) -> Kept:
    """Store the text as an artifact."""
    return Kept(ref=await ctx.artifacts.put(inp.text.encode(), name="text.txt"))


class StoragePlugin:
    """A job store for `journal:` URLs (SQLite underneath) and artifacts in memory."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.artifacts = MemoryArtifacts()

    def _store(self, options: StoreOptions) -> Store:
        self.urls.append(options.url)
        return SQLiteStore("sqlite" + options.url.removeprefix("journal"))

    @bj.hookimpl
    def brains_jobs_register_stores(self, register: RegisterStore) -> None:
        register("journal", self._store)

    @bj.hookimpl
    def brains_jobs_register_artifact_stores(self, register: RegisterArtifactStore) -> None:
        register("memory", lambda url: self.artifacts)

    @bj.hookimpl
    def brains_jobs_register_jobs(self, register: bj.Register) -> None:
        register(keep)


@pytest.mark.anyio
async def test_store_and_artifact_store_hooks_provide_what_runs(tmp_path: Path) -> None:
    plugin = StoragePlugin()
    url = f"journal+aiosqlite:///{tmp_path / 'jobs.db'}"
    async with bj.Runtime(
        url, plugins=[plugin], load_entrypoints=False, artifacts="memory://"
    ) as rt:
        out = await testing.run_job(rt, keep, {"text": "kept"})
        assert await rt.artifacts.get(out.ref) == b"kept"
    assert plugin.urls == [url]
    assert plugin.artifacts.blobs == {out.ref.key: b"kept"}
    assert (tmp_path / "jobs.db").exists()


@pytest.mark.anyio
async def test_a_scheme_registered_twice_names_both_plugins(tmp_path: Path) -> None:
    class Again:
        @bj.hookimpl
        def brains_jobs_register_stores(self, register: RegisterStore) -> None:
            register("sqlite", SQLiteStore)

    rt = bj.Runtime(
        f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", plugins=[Again()], load_entrypoints=False
    )
    with pytest.raises(bj.PluginError, match=r"'sqlite' is registered twice.*'Again'"):
        async with rt:
            pass


class Sweeper:
    """A maintenance service that counts its passes."""

    name = "sweeper"
    leader_only = True

    def __init__(self) -> None:
        self.passes = 0

    def interval(self, settings: bj.Settings) -> float:
        return 0.05

    async def run_once(self, ctx: bj.MaintenanceContext) -> int:
        self.passes += 1
        return 0


class ServicePlugin:
    def __init__(self) -> None:
        self.sweeper = Sweeper()

    @bj.hookimpl
    def brains_jobs_register_services(self, register: bj.RegisterService) -> None:
        register(self.sweeper)


@pytest.mark.anyio
async def test_a_plugin_service_runs_beside_the_workers(tmp_path: Path) -> None:
    plugin = ServicePlugin()
    async with testing.runtime(tmp_path, plugins=[plugin], jobs=[keep]) as rt:
        group = rt.maintenance()
        assert [s.name for s in group.services] == [
            "rescuer",
            "pruner",
            "reaper",
            "promoter",
            "scheduler",
            "callbacks",
            "queue-gauges",
            "sweeper",
        ]
        async with anyio.create_task_group() as tg:
            await tg.start(group.run)
            with anyio.fail_after(5):
                while plugin.sweeper.passes < 2:
                    await anyio.sleep(0.02)
            assert group.is_leader
            tg.cancel_scope.cancel()


def test_a_service_that_is_not_one_is_refused() -> None:
    class Broken:
        @bj.hookimpl
        def brains_jobs_register_services(self, register: bj.RegisterService) -> None:
            register(object())  # type: ignore[arg-type]

    host = PluginHost([Broken()], load_entrypoints=False)
    with pytest.raises(bj.PluginError, match="not a maintenance service"):
        host.services()
