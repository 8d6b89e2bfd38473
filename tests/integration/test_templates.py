"""Job templates on each store: saved with their options checked, listed with their types,
enqueued with input overrides and options that win over the template's, replaced,
deleted; and the `templates` commands.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

import brains_jobs as bj
from brains_jobs.cli import cli
from tests.support import jobs


async def _save_adder(rt: bj.Runtime, **options: Any) -> bj.TemplateInfo:
    return await rt.save_template(
        "adder", jobs.add, {"b": 5}, queue="sums", priority=3, tags=["preset"], **options
    )


@pytest.mark.anyio
async def test_saved_templates_are_listed_with_their_types(rt: bj.Runtime) -> None:
    saved = await _save_adder(rt)
    await rt.save_template("nap", "sleep", jobs.Sleep(seconds=0.1), max_attempts=1)
    assert (saved.name, saved.type, saved.input) == ("adder", "add", {"b": 5})
    assert saved.options == {"queue": "sums", "priority": 3, "tags": ["preset"]}
    listed = await rt.templates()
    assert [(t.name, t.type) for t in listed] == [("adder", "add"), ("nap", "sleep")]
    # A model instance keeps the fields that were set, not its defaults.
    nap = await rt.template("nap")
    assert (nap.input, nap.options) == ({"seconds": 0.1}, {"max_attempts": 1})
    assert nap.created_at.tzinfo is not None and nap.updated_at == nap.created_at


@pytest.mark.anyio
async def test_enqueue_merges_the_input_and_lets_call_options_win(rt: bj.Runtime) -> None:
    await _save_adder(rt)
    handle = await rt.enqueue_template("adder", {"a": 2}, priority=9)
    job = await rt.get(handle.id)
    assert job.type == "add" and job.input == {"a": 2, "b": 5}
    assert (job.queue, job.priority, job.tags) == ("sums", 9, ["preset"])
    assert job.max_attempts == jobs.add.max_attempts  # not set: the type's default
    # An override replaces a default; options given as None are left to the template.
    other = await rt.get(
        (await rt.enqueue_template("adder", jobs.Numbers(a=1, b=1), tags=["x"], queue=None)).id
    )
    assert (other.input, other.queue, other.tags) == ({"a": 1, "b": 1}, "sums", ["x"])
    await rt.run_worker(burst=True, queues=["sums"])
    assert (await handle.result(timeout=10)).total == 7


@pytest.mark.anyio
async def test_the_merged_input_is_validated_at_enqueue(rt: bj.Runtime) -> None:
    await _save_adder(rt)
    with pytest.raises(bj.InvalidJobInput, match="invalid input for job type 'add'") as bad:
        await rt.enqueue_template("adder", {"a": "two"})
    assert bad.value.fields == ["a"]
    with pytest.raises(bj.InvalidJobInput) as missing:
        await rt.enqueue_template("adder")
    assert missing.value.fields == ["a"]
    with pytest.raises(bj.InvalidJobInput, match="expected a mapping"):
        await rt.enqueue_template("adder", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(bj.InvalidJobOption, match="'colour'"):
        await rt.enqueue_template("adder", {"a": 1}, colour="red")
    assert (await rt.list()).jobs == []


@pytest.mark.anyio
async def test_save_checks_options_and_defaults_now(rt: bj.Runtime) -> None:
    with pytest.raises(bj.InvalidJobOption, match="'priority'"):
        await rt.save_template("t", jobs.add, priority="high")  # type: ignore[arg-type]
    with pytest.raises(bj.InvalidJobOption, match="'queue'"):
        await rt.save_template("t", jobs.add, queue="no spaces")
    with pytest.raises(bj.InvalidJobOption, match="'tags'"):
        await rt.save_template("t", jobs.add, tags="one")
    with pytest.raises(bj.InvalidJobOption, match="'on_conflict'"):
        await rt.save_template("t", jobs.add, on_conflict="ignore")
    with pytest.raises(bj.InvalidJobOption, match="invalid template name"):
        await rt.save_template("no spaces", jobs.add)
    with pytest.raises(bj.InvalidJobInput) as bad:
        await rt.save_template("t", jobs.add, {"b": "five"})
    assert bad.value.fields == ["b"]
    with pytest.raises(bj.InvalidJobInput, match="NUL"):
        await rt.save_template("t", jobs.add, {"c": "\x00"})
    assert await rt.templates() == []
    # Required fields may be left to the overrides.
    assert (await rt.save_template("t", jobs.add)).input == {}


@pytest.mark.anyio
async def test_an_unknown_template_is_named(rt: bj.Runtime) -> None:
    with pytest.raises(bj.TemplateNotFound, match="no job template named 'nope'") as info:
        await rt.enqueue_template("nope", {"a": 1})
    assert info.value.name == "nope"
    with pytest.raises(bj.TemplateNotFound):
        await rt.template("nope")
    assert await rt.delete_template("nope") is False


@pytest.mark.anyio
async def test_a_type_unknown_here_is_named(rt: bj.Runtime) -> None:
    with pytest.raises(bj.UnknownJobType, match="unknown job type 'gone'"):
        await rt.save_template("t", "gone")
    unregistered = bj.JobDefinition(
        "unregistered", jobs.add.handler, input_model=jobs.Numbers, output_model=jobs.Sum
    )
    with pytest.raises(bj.UnknownJobType, match="'unregistered'"):
        await rt.save_template("t", unregistered)
    # Saved by a process whose plugins know the type.
    await rt.store.save_template("elsewhere", "gone", "{}", {})
    assert [t.type for t in await rt.templates()] == ["gone"]
    with pytest.raises(bj.UnknownJobType, match="unknown job type 'gone'") as info:
        await rt.enqueue_template("elsewhere")
    assert info.value.name == "gone"


@pytest.mark.anyio
async def test_saving_again_replaces_the_template(rt: bj.Runtime) -> None:
    first = await _save_adder(rt, owner="ops")
    await anyio.sleep(0.01)
    second = await rt.save_template("adder", "add", {"a": 1}, priority=1)
    assert (second.input, second.options) == ({"a": 1}, {"priority": 1})
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert [t.name for t in await rt.templates()] == ["adder"]
    job = await rt.get((await rt.enqueue_template("adder")).id)
    assert (job.input, job.queue, job.priority, job.tags, job.owner) == (
        {"a": 1, "b": 0},
        "default",
        1,
        [],
        None,
    )


@pytest.mark.anyio
async def test_delete(rt: bj.Runtime) -> None:
    await _save_adder(rt)
    handle = await rt.enqueue_template("adder", {"a": 1})
    assert await rt.delete_template("adder") is True
    assert await rt.templates() == []
    with pytest.raises(bj.TemplateNotFound):
        await rt.enqueue_template("adder", {"a": 1})
    assert (await rt.get(handle.id)).status is bj.JobStatus.QUEUED


@pytest.mark.anyio
async def test_unique_keys_and_delays_work_as_for_enqueue(rt: bj.Runtime) -> None:
    await rt.save_template(
        "daily", jobs.add, {"a": 1}, unique_key="daily", delay=timedelta(minutes=1)
    )
    assert (await rt.template("daily")).options == {"unique_key": "daily", "delay": 60.0}
    first = await rt.enqueue_template("daily")
    again = await rt.enqueue_template("daily", {"a": 2})
    assert first.created and not again.created and again.id == first.id
    job = await rt.get(first.id)
    assert 50 < (job.run_at - datetime.now(UTC)).total_seconds() <= 60
    # A run time given at the call replaces the template's delay.
    at = datetime.now(UTC) + timedelta(hours=1)
    later = await rt.get((await rt.enqueue_template("daily", unique_key="other", run_at=at)).id)
    assert abs((later.run_at - at).total_seconds()) < 0.01


# -- the command line (SQLite) ---------------------------------------------------------


def test_the_templates_commands(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    common = ["--db", db, "--plugin", "tests.support.jobs"]
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(
            cli, ["templates", *args, *common], env={"BRAINS_JOBS_PLUGINS_ALLOW": ""}
        )
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run(
        "save",
        "adder",
        "add",
        "--input",
        '{"b": 5}',
        "--queue",
        "sums",
        "--priority",
        "3",
        "--tag",
        "x",
        "--tag",
        "y",
    )
    assert (code, out, err) == (0, "saved template adder (add)\n", "")
    code, out, _ = run("list")
    assert code == 0
    assert out.startswith('adder  type=add  priority=3 queue=sums tags=["x", "y"]  updated=')
    code, out, _ = run("enqueue", "adder", "--input", '{"a": 2}', "--priority", "8")
    assert code == 0
    job_id = int(out)
    code, out, _ = run("show", "adder")
    assert code == 0 and json.loads(out)["input"] == {"b": 5}
    code, out, err = run("enqueue", "adder", "--input", '{"a": "two"}')
    assert code == 2 and "invalid input for job type 'add'" in err and "a:" in err
    code, out, err = run("enqueue", "adder", "--input", "[1]")
    assert code == 2 and "expected a JSON object" in err
    code, out, err = run("save", "other", "nope")
    assert code == 2 and "unknown job type 'nope'" in err
    assert run("delete", "adder")[:2] == (0, "deleted template adder\n")
    code, out, err = run("delete", "adder")
    assert code == 1 and "no job template named 'adder'" in err
    assert run("list")[:2] == (0, "no templates\n")

    async def check() -> None:
        async with bj.Runtime(db, jobs=jobs.ALL, load_entrypoints=False) as rt:
            job = await rt.get(job_id)
        assert (job.input, job.queue, job.priority, job.tags) == (
            {"a": 2, "b": 5},
            "sums",
            8,
            ["x", "y"],
        )

    anyio.run(check)
