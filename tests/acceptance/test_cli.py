"""The CLI in subprocesses: commands, exit codes, guard rails, `watch` from another process."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from brains_jobs.runtime.collector import WORKER_YOUNG_THRESHOLD
from tests.acceptance.conftest import CLI, ROOT, Workers, cli, env

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


def test_the_worker_sets_up_its_process_collector(db: str) -> None:
    job_id = int(cli("enqueue", "collector", '{"a": 0}', "--db", db, *PLUGIN).stdout.strip())
    assert cli("worker", "--db", db, *PLUGIN, "--burst").returncode == 0
    shown = cli("show", str(job_id), "--db", db, *PLUGIN)
    record = json.loads(shown.stdout[: shown.stdout.rindex("}") + 1])
    assert record["status"] == "succeeded", record
    assert record["output"]["young_threshold"] == WORKER_YOUNG_THRESHOLD
    assert record["output"]["frozen"] > 1000  # the modules and the runtime


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
    assert cli("migrate", "--db", db).returncode == 0
    out = cli("show", "42", "--db", db)
    assert out.returncode == 1 and "no job with id 42" in out.stderr


@pytest.mark.parametrize("command", ["list", "stats", "workers", "watch", "health"])
def test_commands_that_only_read_never_create_a_database(
    command: str, db: str, tmp_path: Path
) -> None:
    out = cli(command, "--db", db, timeout=30)
    assert out.returncode == 1, out.stdout
    assert "no database at" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "cli.db").exists()


def test_an_unusable_url_says_which_to_use(tmp_path: Path) -> None:
    out = cli("list", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"use sqlite+aiosqlite:///{tmp_path / 'x.db'}" in out.stderr
    out = cli("list", "--db", "mysql://h/db")
    assert out.returncode == 2 and "sqlite+aiosqlite:///" in out.stderr


def test_common_options_work_before_and_after_the_command(db: str) -> None:
    first = cli("--db", db, *PLUGIN, "enqueue", "add", '{"a": 1}')
    assert first.returncode == 0, first.stderr
    second = cli("enqueue", "add", '{"a": 2}', "--db", db, *PLUGIN)
    assert second.returncode == 0, second.stderr
    listed = cli("--db", db, "list", "--json")
    assert len(listed.stdout.splitlines()) == 2


def test_durations_read_like_people_write_them(db: str) -> None:
    job_id = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN, "--delay", "5m").stdout
    record = json.loads(cli("show", job_id.strip(), "--db", db, "--no-events").stdout)
    from datetime import datetime

    waits = datetime.fromisoformat(record["run_at"]) - datetime.fromisoformat(record["created_at"])
    assert 299 < waits.total_seconds() < 301
    bad = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN, "--delay", "-5s")
    assert bad.returncode == 2 and "negative" in bad.stderr
    bad = cli("prune", "--db", db, "--older-than", "soon")
    assert bad.returncode == 2 and "cannot read 'soon' as a duration" in bad.stderr


def test_health_on_a_good_and_a_broken_database(db: str, tmp_path: Path) -> None:
    assert cli("migrate", "--db", db).returncode == 0
    good = cli("health", "--db", db, "--json")
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] and report["schema_current"] and report["workers"] == []
    (tmp_path / "broken.db").write_bytes(b"this is not a database" * 100)
    broken = cli("health", "--db", f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}")
    assert broken.returncode != 0 and "Traceback" not in broken.stderr
    assert "not a database" in broken.stderr


def test_enqueue_wait_says_when_no_worker_knows_the_type(db: str) -> None:
    out = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN, "--wait", "--timeout", "0.5")
    assert out.returncode == 1
    assert "none knows job type 'add'" in out.stderr


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
    out = cli("plugins", BRAINS_JOBS_PLUGINS_ALLOW="testplugin")
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
    assert re.fullmatch(rf"#{job_id} sleep running attempt=1 by \S+:\d+:\w+", lines[1]), lines[1]
    assert [line.split()[3] for line in lines[2:7]] == [
        "20.0%",
        "40.0%",
        "60.0%",
        "80.0%",
        "100.0%",
    ]
    assert lines[-1] == f"#{job_id} sleep succeeded attempt=1"


def test_watch_follows_live_without_history(db: str, workers: Workers, tmp_path: Path) -> None:
    earlier = cli("enqueue", "add", '{"a": 0}', "--db", db, *PLUGIN).stdout.strip()
    watch = subprocess.Popen(
        [*CLI, "watch", "--db", db, "--type", "add"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )
    try:
        time.sleep(1.0)  # the watcher opens the database and starts following
        job_id = cli("enqueue", "add", '{"a": 1}', "--db", db, *PLUGIN).stdout.strip()
        workers.start(db)
        lines: list[str] = []
        assert watch.stdout is not None
        while not lines or f"#{job_id} add succeeded" not in lines[-1]:
            lines.append(watch.stdout.readline().strip())
    finally:
        watch.terminate()
        watch.communicate(timeout=10)
    seen = [line.split(" ", 1)[1] for line in lines if " progress " not in line]
    assert not any(line.startswith(f"#{earlier} add queued") for line in seen)
    seen = [line for line in seen if line.startswith(f"#{job_id} ")]
    seen = [re.sub(r" by \S+$", "", line) for line in seen]  # the worker, on `running`
    assert seen == [
        f"#{job_id} add queued attempt=0",
        f"#{job_id} add running attempt=1",
        f"#{job_id} add succeeded attempt=1",
    ]


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
    assert out.stderr.strip().splitlines()[-1] == "error: timed out waiting for the job"
