"""Every example under examples/ runs to completion, and the documented ones print what the
docs say they print.

Each example runs as `python examples/NAME.py` with this interpreter, in an empty
temporary directory, with no `BRAINS_JOBS_*` variables from the calling environment.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))

# Lines an example must print: what it exists to show.
KEY_LINES = {
    "fastapi_app.py": [
        "grace sees job #1: succeeded, output {'summary': 'Q3: 3 pages'}",
        "bob asks for it: 404 JobNotFound",
        "grace's jobs: [1]",
        "without signing in: 401",
        "the dashboard for ada: 200 text/html; charset=utf-8",
    ],
    "host_app.py": [
        "slug: hello-brains-jobs",
        "invoice 2024-001 total: 42.50",
        "rejected: invalid input for job type 'example.invoice-total': lines:",
        "slug from the background worker: workers-in-task-groups",
    ],
    "plugin_in_code.py": [
        "owner: AuditPlugin",
        "job #2: HELLO, GRACE",
        "plugin subscriber saw job #2: queued -> running -> queued -> running -> succeeded",
    ],
    "schedules.py": [
        'nightly-import: cron "0 0 * * *" UTC, next ',
        "ticks enqueued, each one job",
        "poll: last tick skipped (the schedule was paused)",
        "02:30 Europe/Paris: 2024-03-29 02:30 CET, 2024-03-30 02:30 CET, 2024-03-31 03:00 CEST,"
        " 2024-04-01 02:30 CEST",
        "02:30 Europe/Paris: 2024-10-25 02:30 CEST, 2024-10-26 02:30 CEST, 2024-10-27 02:30 CEST,"
        " 2024-10-28 02:30 CET",
    ],
    "progress_subscriber.py": [
        "#2 progress 100% chunk 2/2",
        "#2 succeeded (attempt 1)",
        "dropped: missed ",
        "followed all 10 jobs to the end",
    ],
    "templates.py": [
        "template oncall-page: example.notify input={'channel': 'pager', 'urgent': True}",
        "job #1 from oncall-page: queue=alerts priority=10 tags=['oncall']",
        "job #2 from weekly-digest: queue=notices priority=0 tags=['weekly']",
        "rejected: invalid input for job type 'example.notify': message: Field required",
        "rejected: no job template named 'nope'",
        "pager to alice: [URGENT] disk full",
        "left: ['oncall-page']",
    ],
    "unique_jobs.py": [
        "again: the same job: True, created=False",
        "rejected: unique key 'reindex:products' is held by job 1",
        "batch created: [True, False, False, True]",
        "digest: 1 job, replaced=True, items=['price', 'stock', 'photo']",
        "digest sent to alice: price, stock, photo, title",
        "after the run: a new job: True, created=True",
        ": created=False, status=succeeded",
        "holds its unique key 'export:monthly' now",
        "export:monthly by job #",
    ],
    "dependencies.py": [
        "report #3: waiting for #1 and #2",
        "report: https://example.com/a: 'jobs wait for other jobs';"
        " https://example.com/b: 'chains pass outputs on'",
        "chain: saved c=2",
        "chain with a missing page: failed -> skipped -> skipped",
        "step 2 never ran: skipped: parent job ",
        "group (on_member_failure='run'): pages=2 failed=1 words=7",
        "group (on_member_failure='skip'): callback skipped",
        "after a failed parent: job ",
        "failed after 1 attempt(s): PermanentError: 404 for https://example.com/gone",
    ],
    "limits.py": [
        "12 calls done",
        "api: never more than 2 at once: True",
        "accounts: never more than 1 at once each: True",
        "quotes: never more than 5 starts within a second: True",
        "BUSY: succeeded on attempt 2, attempts=2 max_attempts=4 errors=0",
        "limit api: concurrency=4 rate=None per=None burst=1 running=0",
        "limit quotes: concurrency=None rate=100 per=60.0 burst=10 running=0 (was throttled)",
    ],
    "admin.py": [
        "job #2 attempt 1 on worker-1: queued, ConnectionError: feed-b is down",
        "job #2 attempt 2 on worker-1: failed, ConnectionError: feed-b is down",
        "retried #2: queued, attempts 2/4",
        "#2 now: 60 rows after 3 attempts",
        "resubmitted #1 as #4 (original_id=1)",
        "rejected: invalid output for job type 'example.import-feed': rows:",
        "#3 completed by hand: 0 rows",
        "#5 failed by hand: FailedByRequest: the feed was retired",
        "#6 moved: queue=bulk priority=-5",
        "rejected: invalid option 'created_after': a bulk action needs a time bound",
        "dry run: would retry 3 jobs, changed 0",
        "retried [8, 9] of [7, 8, 9] (newest first)",
        "cancelled 2 of them before they ran again",
        "#2 audit: queued by ann: retried by request: 2 more attempt(s)",
        "#3 audit: succeeded by ann: completed by request",
    ],
    "tracking.py": [
        "tracking job #1: running, tracked=True, ttl=600.0",
        "#1 progress 50% (half way)",
        "rejected: invalid output for job type 'example.transcode': seconds: Field required",
        "#1 succeeded: s3://out/intro.mp4, 93s, usage gpu_seconds=75",
        "#2 crm.sync: TrackedFailure: the CRM refused the token",
        "#3 lost: Lost: no report came within the tracking job's ttl",
        "late report refused: job 3 is failed (lost: no report came within its ttl)",
        "#4 after its handler: running, tracked=True",
        "#4 finished outside: s3://out/outro.mp4",
        "#5 usage over 2 attempts: cost_cents=6 input_tokens=2400",
        "usage of example.summarize: cost_cents=9 input_tokens=3600",
        "usage of team-video: api_calls=1 gpu_seconds=95",
        "example.summarize ran 2 times; p95 ",
    ],
    "versions_and_callbacks.py": [
        "queued under version 1: #1 #2 #3",
        "on_success: job #1 (succeeded) said 'Dear Ada Lovelace'",
        "on_failure: job #2 (failed) UpgradeFailed",
        "#1 succeeded: version 2, input {'first': 'Ada', 'last': 'Lovelace', 'formal': True}",
        "#1 log: ['input upgraded from version 1 to 2']",
        "#2 failed after 1 attempt: upgrading the input of job type 'example.greet' from"
        " version 1 to 2 failed: ValueError",
        "#3 succeeded although its on_success raised: {'text': 'Dear Grace Hopper'}",
        "a version 1 worker gave #4 back: enqueued under version 2 of 'example.greet';"
        " this worker runs version 1: left for a worker that knows it",
        "#4 queued, 3 attempts left of 3",
        "#4 run by a version 2 worker: Dear Edsger Dijkstra",
    ],
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINS_JOBS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_documented_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert set(KEY_LINES) <= names, f"missing examples: {set(KEY_LINES) - names}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_says_what_it_shows_and_how_to_run_it(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.name}: start with a docstring saying what it shows and how to run it"
    assert f"python examples/{path.name}" in doc, (
        f"{path.name}: the docstring should show how to run it: `python examples/{path.name}`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, f"{path.name} exited with {proc.returncode}\n{report}"
    for line in KEY_LINES.get(path.name, []):
        assert line in proc.stdout, f"{path.name} did not print {line!r}\n{report}"
    if path.name in KEY_LINES:
        leftovers = sorted(p.name for p in tmp_path.iterdir())
        assert not leftovers, f"{path.name} left files in its working directory: {leftovers}"
