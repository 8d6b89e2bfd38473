"""The CLI in subprocesses: commands, exit codes, `watch` from another process, `demo`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import CLI, ROOT, Workers, cli, env, wait_until

pytestmark = pytest.mark.slow

PLUGIN = ("--plugin", "tests.support.jobs")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


def test_enqueue_show_list_stats(db: str) -> None:
    out = cli("enqueue", "add", '{"a": 2, "b": 5}', "--db", db, *PLUGIN, "--tag", "t1")
    assert out.returncode == 0, out.stderr
    job_id = int(out.stdout.strip())
    shown = cli("show", str(job_id), "--db", db, *PLUGIN)
    record = json.loads(shown.stdout[: shown.stdout.rindex("}") + 1])
    assert record["status"] == "queued" and record["input"] == {"a": 2, "b": 5}
    assert f"#{job_id} add queued" in shown.stdout
    listed = cli("list", "--db", db, "--tag", "t1", "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [job_id]
    worker = cli("worker", "--db", db, *PLUGIN, "--burst")
    assert worker.returncode == 0, worker.stderr
    stats = cli("stats", "--db", db, "--json")
    assert json.loads(stats.stdout)["by_type"] == {"add": {"succeeded": 1}}


def test_bad_input_exits_2_naming_the_field(db: str) -> None:
    out = cli("enqueue", "add", '{"a": "x"}', "--db", db, *PLUGIN)
    assert out.returncode == 2
    assert "invalid input for job type 'add'" in out.stderr and "a:" in out.stderr


def test_unknown_type_exits_2_naming_known_types(db: str) -> None:
    out = cli("enqueue", "nope", "{}", "--db", db, *PLUGIN)
    assert out.returncode == 2
    assert "unknown job type 'nope'" in out.stderr and "'add'" in out.stderr


def test_malformed_json_exits_2(db: str) -> None:
    out = cli("enqueue", "add", "{a:", "--db", db, *PLUGIN)
    assert out.returncode == 2 and "not valid JSON" in out.stderr


def test_missing_job_exits_1(db: str) -> None:
    out = cli("show", "42", "--db", db)
    assert out.returncode == 1 and "no job with id 42" in out.stderr


def test_cancel_and_retry(db: str) -> None:
    job_id = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN, "--delay", "60").stdout.strip()
    assert cli("cancel", job_id, "--db", db).stdout.strip() == "cancelled"
    again = cli("cancel", job_id, "--db", db)
    assert again.returncode == 1 and "cannot be cancelled" in again.stderr
    assert cli("retry", job_id, "--db", db, *PLUGIN).returncode == 0
    assert cli("worker", "--db", db, *PLUGIN, "--burst").returncode == 0
    assert json.loads(cli("stats", "--db", db, "--json").stdout)["by_type"] == {
        "add": {"succeeded": 1}
    }


def test_plugins_lists_the_installed_test_plugin() -> None:
    out = cli("plugins", BRAINS_JOBS_PLUGINS="testplugin")
    assert out.returncode == 0
    assert "testplugin (brains-jobs-testplugin 0.0.1)" in out.stdout
    assert "    testplugin.greet" in out.stdout


def test_plugin_command_is_added() -> None:
    out = cli("testplugin-hello")
    assert out.returncode == 0 and out.stdout.strip() == "hello from testplugin"


def test_watch_in_another_process_sees_events_in_order(db: str, workers: Workers) -> None:
    job_id = cli(
        "enqueue", "sleep", '{"seconds": 0.5, "ledger": false}', "--db", db, *PLUGIN
    ).stdout.strip()
    watch = subprocess.Popen(
        [*CLI, "watch", job_id, "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )
    try:
        workers.start(db)
        out, err = watch.communicate(timeout=60)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    lines = [line.split(" ", 1)[1] for line in out.splitlines()]
    assert lines[0] == f"#{job_id} sleep queued attempt=0"
    assert lines[1] == f"#{job_id} sleep running attempt=1"
    assert [line.split()[3] for line in lines[2:7]] == [
        "20.0%",
        "40.0%",
        "60.0%",
        "80.0%",
        "100.0%",
    ]
    assert lines[-1] == f"#{job_id} sleep succeeded attempt=1"


def test_watch_follows_live_without_history(db: str, workers: Workers, tmp_path: Path) -> None:
    watch = subprocess.Popen(
        [*CLI, "watch", "--db", db, "--type", "add"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )
    try:
        wait_until(lambda: (tmp_path / "cli.db").exists(), 10, "the watcher to open the database")
        job_id = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN).stdout.strip()
        workers.start(db)
        lines: list[str] = []
        assert watch.stdout is not None
        while not lines or "succeeded" not in lines[-1]:
            lines.append(watch.stdout.readline().strip())
    finally:
        watch.terminate()
        watch.communicate(timeout=10)
    assert [line.split(" ", 1)[1] for line in lines if " progress " not in line] == [
        f"#{job_id} add queued attempt=0",
        f"#{job_id} add running attempt=1",
        f"#{job_id} add succeeded attempt=1",
    ]


def test_demo_runs_two_types_with_progress_and_results(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "demo", "--db", f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "demo.checksum progress" in out.stdout and "demo.wordcount progress" in out.stdout
    assert "Results:" in out.stdout
    assert out.stdout.count(" succeeded after ") == 5
    assert "demo.wordcount succeeded after 2 attempt(s)" in out.stdout


def test_prune_removes_finished_jobs(db: str) -> None:
    cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN)
    queued = cli("enqueue", "add", '{"a": 2}', "--db", db, *PLUGIN, "--delay", "60").stdout.strip()
    assert cli("worker", "--db", db, *PLUGIN, "--burst").returncode == 0
    out = cli("prune", "--db", db, "--older-than", "0")
    assert out.returncode == 0 and out.stdout.strip() == "pruned 1 job(s)"
    listed = cli("list", "--db", db, "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in listed] == [int(queued)]


def test_enqueue_wait_timeout_is_a_clear_error(db: str) -> None:
    out = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN, "--wait", "--timeout", "0.2")
    assert out.returncode == 1
    assert out.stderr.strip() == "error: timed out waiting for the job"
