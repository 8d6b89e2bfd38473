"""The plugin host: entry points of installed distributions, code plugins, failures."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import brains_jobs as bj
from brains_jobs.plugins import host as host_module
from brains_jobs.plugins.host import PluginHost
from brains_jobs.registry import Registry


def test_installed_distribution_is_discovered_by_entry_point() -> None:
    # brains-jobs-testplugin is on sys.path (tests/support/site), found by its entry point.
    host = PluginHost(allow={"testplugin"})
    registry = Registry()
    host.register_jobs(registry)
    assert "testplugin.greet" in registry
    assert registry.owner("testplugin.greet") == "testplugin"
    info = {p.name: p for p in host.plugins()}["testplugin"]
    assert info.distribution == "brains-jobs-testplugin"
    assert info.version == "0.0.1"
    assert info.job_types == ("testplugin.greet",)


def test_deny_list_skips_a_plugin() -> None:
    host = PluginHost(deny={"testplugin"}, allow=None)
    registry = Registry()
    host.register_jobs(registry)
    assert "testplugin.greet" not in registry


def test_load_entrypoints_false_loads_none() -> None:
    host = PluginHost(load_entrypoints=False)
    registry = Registry()
    host.register_jobs(registry)
    assert len(registry) == 0
    assert [p.name for p in host.plugins()] == ["brains_jobs.builtin"]


def _fake_distribution(root: Path, name: str, module_source: str, ep_name: str) -> None:
    """Write an installed distribution (dist-info + module) into `root`."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[brains_jobs]\n{ep_name} = {name}\n")


def test_plugin_that_fails_to_import_is_skipped_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fake_distribution(
        tmp_path, "bj_broken_plugin", "raise ImportError('missing libfoo')\n", "broken"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(host_module, "_loaded", {})
    host = PluginHost(allow={"broken", "testplugin"})
    assert [(f.name, f.distribution) for f in host.failures] == [("broken", "bj_broken_plugin")]
    assert "missing libfoo" in host.failures[0].error
    assert "plugin 'broken'" in caplog.text and "missing libfoo" in caplog.text
    registry = Registry()
    host.register_jobs(registry)
    assert "testplugin.greet" in registry  # the others still load
    sys.modules.pop("bj_broken_plugin", None)


def test_two_plugins_registering_one_name_are_both_named() -> None:
    class First:
        __name__ = "first-plugin"

        @bj.hookimpl
        def brains_jobs_register_jobs(self, register: bj.Register) -> None:
            from tests.support.jobs import add

            register(add)

    class Second(First):
        __name__ = "second-plugin"

        @bj.hookimpl
        def brains_jobs_register_jobs(self, register: bj.Register) -> None:
            from tests.support.jobs import Numbers, Sum, noop

            register(bj.JobDefinition("add", noop.handler, input_model=Numbers, output_model=Sum))

    host = PluginHost([First(), Second()], load_entrypoints=False)
    with pytest.raises(bj.PluginError, match=r"first-plugin.*second-plugin"):
        host.register_jobs(Registry())


class Provides:
    """A plugin class whose objects each register the job types they are given."""

    def __init__(self, *definitions: bj.JobDefinition) -> None:
        self.definitions = definitions

    @bj.hookimpl
    def brains_jobs_register_jobs(self, register: bj.Register) -> None:
        for definition in self.definitions:
            register(definition)


def test_two_objects_of_one_plugin_class_both_register() -> None:
    from tests.support.jobs import add, noop

    host = PluginHost([Provides(add), Provides(noop)], load_entrypoints=False)
    registry = Registry()
    host.register_jobs(registry)
    assert registry.names() == ["add", "noop"]
    names = [p.name for p in host.plugins() if p.job_types]
    assert names == ["Provides", "Provides#2"]


def test_two_objects_of_one_plugin_class_that_clash_are_both_named() -> None:
    from tests.support.jobs import Numbers, Sum, add, noop

    other = bj.JobDefinition("add", noop.handler, input_model=Numbers, output_model=Sum)
    host = PluginHost([Provides(add), Provides(other)], load_entrypoints=False)
    with pytest.raises(bj.PluginError, match=r"'Provides'.*'Provides#2'"):
        host.register_jobs(Registry())


def test_code_plugin_given_by_name_that_fails_is_an_error() -> None:
    with pytest.raises(bj.PluginError, match="no_such_module_xyz"):
        PluginHost(["no_such_module_xyz"], load_entrypoints=False)


def test_plugin_with_unknown_hook_is_rejected() -> None:
    class Typo:
        @bj.hookimpl
        def brains_jobs_register_job(self, register: bj.Register) -> None:  # missing "s"
            pass

    with pytest.raises(bj.PluginError, match="unknown hook"):
        PluginHost([Typo()], load_entrypoints=False)


def test_unknown_database_scheme() -> None:
    with pytest.raises(bj.ConfigurationError, match="known schemes"):
        PluginHost(load_entrypoints=False).make_store("mysql://localhost/x")


def test_entry_point_plugin_whose_hook_raises_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    source = """
        import brains_jobs as bj
        from tests.support.jobs import add

        @bj.hookimpl
        def brains_jobs_register_jobs(register):
            register(add)
            raise RuntimeError("half-way bug")
    """
    _fake_distribution(tmp_path, "bj_buggy_plugin", source, "buggy")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(host_module, "_loaded", {})
    host = PluginHost(allow={"buggy", "testplugin"})
    registry = Registry()
    host.register_jobs(registry)
    assert registry.names() == ["testplugin.greet"]  # nothing of the buggy plugin is left
    assert [f.name for f in host.failures] == ["buggy"]
    assert "half-way bug" in host.failures[0].error and "half-way bug" in caplog.text
    assert "buggy" not in [p.name for p in host.plugins()]
    sys.modules.pop("bj_buggy_plugin", None)


def test_code_plugin_whose_hook_raises_is_an_error() -> None:
    class Buggy:
        @bj.hookimpl
        def brains_jobs_register_jobs(self, register: bj.Register) -> None:
            raise RuntimeError("bug")

    host = PluginHost([Buggy()], load_entrypoints=False)
    with pytest.raises(bj.PluginError, match="failed in brains_jobs_register_jobs"):
        host.register_jobs(Registry())


def test_postgres_url_schemes() -> None:
    host = PluginHost(load_entrypoints=False)
    for url in ("postgresql+asyncpg://u@h/db", "postgresql://u@h/db", "postgres://u@h/db"):
        assert type(host.make_store(url)).__name__ == "PostgresStore"
