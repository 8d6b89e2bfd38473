"""The hooks and the entry point: the job types and the `demo` command are registered."""

from __future__ import annotations

from importlib.metadata import entry_points

import brains_jobs as bj
import click
import pytest
from brains_jobs import testing
from brains_jobs.cli import cli

from brains_jobs_demo import command, jobs, plugin

pytestmark = pytest.mark.anyio

TYPES = [
    "demo.checksum",
    "demo.report.cover",
    "demo.report.pdf",
    "demo.report.scrape",
    "demo.wordcount",
]


async def test_plugin_registers_the_job_types(tmp_path) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        assert [n for n in rt.registry.names() if n.startswith("demo.")] == TYPES
        assert rt.registry.get("demo.report.pdf") is jobs.report_pdf


def test_plugin_registers_the_demo_command() -> None:
    added: list[click.Command] = []
    plugin.brains_jobs_register_commands(register=added.append)
    assert added == [command.demo]
    assert command.demo.name == "demo"
    options = {o.name: o for o in command.demo.params if isinstance(o, click.Option)}
    assert set(options) == {"db", "artifacts", "plain", "log_level"}
    assert options["db"].envvar == "BRAINS_JOBS_DEMO_DATABASE_URL"
    assert options["db"].default == "sqlite+aiosqlite:///brains_jobs_demo.db"
    assert options["artifacts"].envvar == "BRAINS_JOBS_DEMO_ARTIFACTS"
    assert options["artifacts"].default == "brains_jobs_artifacts/demo"


async def test_entry_point_registers_the_plugin(tmp_path, monkeypatch) -> None:
    [entry_point] = [ep for ep in entry_points(group="brains_jobs") if ep.name == "demo"]
    assert entry_point.value == "brains_jobs_demo.plugin"
    assert entry_point.load() is plugin
    # Through the real entry-point path, but only this plugin's entry point.
    monkeypatch.setenv("BRAINS_JOBS_PLUGINS_ALLOW", "demo")
    async with testing.runtime(tmp_path, load_entrypoints=True) as rt:
        assert [n for n in rt.registry.names() if n.startswith("demo.")] == TYPES
        assert jobs.missing_report_plugins(rt.registry) == list(jobs.REPORT_PLUGINS.values())


def test_missing_report_plugins() -> None:
    registry = bj.Runtime(load_entrypoints=False, plugins=[plugin]).registry
    assert jobs.missing_report_plugins(registry) == [
        "brains-jobs-web-scraping",
        "brains-jobs-image-generation",
        "brains-jobs-pdf-export",
    ]


def test_the_cli_does_not_know_demo_by_itself() -> None:
    assert "demo" not in cli.commands
