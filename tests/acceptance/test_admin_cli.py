"""The admin commands in subprocesses: resubmit, complete, fail, move, the bulk retry and
cancel, attempts; and a tracking job reported on and completed from other processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

import brains_jobs as bj
from tests.acceptance.conftest import cli
from tests.support import jobs

pytestmark = pytest.mark.slow

PLUGIN = ("--plugin", "tests.support.jobs")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}"


def run(*args: str) -> str:
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def job(db: str, job_id: int) -> dict[str, object]:
    shown = run("show", str(job_id), "--db", db, "--no-events")
    record: dict[str, object] = json.loads(shown)
    return record


def test_admin_commands(db: str) -> None:
    failing = int(run("enqueue", "flaky", '{"fail_times": 9}', "--db", db, *PLUGIN))
    run("worker", "--db", db, *PLUGIN, "--burst")
    assert job(db, failing)["status"] == "failed"

    attempts = run("attempts", str(failing), "--db", db, "--json").splitlines()
    assert [json.loads(a)["number"] for a in attempts] == [1, 2, 3, 4]
    assert json.loads(attempts[0])["error"]["message"] == "boom #1"

    preview = run("retry-many", "--type", "flaky", "--since", "1h", "--dry-run", "--db", db)
    assert json.loads(preview.splitlines()[1])["matched"] == [failing]
    assert job(db, failing)["status"] == "failed"
    unbounded = cli("retry-many", "--type", "flaky", "--db", db)
    assert unbounded.returncode == 2 and "time bound" in unbounded.stderr

    again = int(run("resubmit", str(failing), "--db", db, *PLUGIN, "--actor", "ann"))
    assert job(db, again)["original_id"] == failing
    run("move", str(again), "--queue", "later", "--priority", "3", "--db", db, *PLUGIN)
    assert (job(db, again)["queue"], job(db, again)["priority"]) == ("later", 3)
    run("fail", str(again), "not needed any more", "--db", db, *PLUGIN)
    assert job(db, again)["status"] == "failed"

    bad = cli("complete", str(failing), '{"attempt": "x"}', "--db", db, *PLUGIN)
    assert bad.returncode == 2 and "invalid output" in bad.stderr and "attempt" in bad.stderr
    run("complete", str(failing), '{"attempt": 7}', "--db", db, *PLUGIN, "--actor", "ann")
    assert job(db, failing)["output"] == {"attempt": 7}

    queued = [
        int(run("enqueue", "add", '{"a": 1}', "--delay", "1h", "--db", db, *PLUGIN))
        for _ in range(2)
    ]
    cancelled = run("cancel-many", "--type", "add", "--since", "1h", "--db", db)
    assert sorted(json.loads(cancelled.splitlines()[1])["changed"]) == sorted(queued)


@pytest.mark.anyio
async def test_a_tracking_job_is_reported_on_from_other_processes(db: str) -> None:
    async with bj.Runtime(db, jobs=jobs.ALL, load_entrypoints=False) as rt:
        handle = await rt.track(jobs.add, {"a": 1, "b": 2}, ttl=60)
        for step in ("0.25", "0.5"):
            await anyio.to_thread.run_sync(
                lambda s=step: run(
                    "report",
                    str(handle.id),
                    "--progress",
                    s,
                    "--usage",
                    '{"rows": 10}',
                    "--db",
                    db,
                    "--actor",
                    "etl",
                )
            )
        assert (await rt.get(handle.id)).progress == 0.5
        await anyio.to_thread.run_sync(
            lambda: run("complete", str(handle.id), '{"total": 3}', "--db", db, *PLUGIN)
        )
        assert (await handle.result(timeout=5)).total == 3
        done = await rt.get(handle.id)
        assert (done.usage, done.tracked) == ({"rows": 20}, True)
        progress = [
            e
            for e in await rt.store.events_after(0, job_id=handle.id)
            if e.kind.value == "progress"
        ]
        assert [(e.progress, e.actor) for e in progress] == [(0.25, "etl"), (0.5, "etl")]
