"""`brains-jobs demo` end to end, in a subprocess, with the installed plugins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from brains_jobs_demo import jobs


def brains_jobs(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m brains_jobs ARGS` (and no BRAINS_JOBS_* from outside but `extra`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINS_JOBS_")}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "brains_jobs", *args],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        cwd=tmp_path,
    )


def demo(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    artifacts = str(tmp_path / "artifacts")
    return brains_jobs(tmp_path, "demo", "--db", db, "--artifacts", artifacts, "--plain", **extra)


def test_demo_runs_every_job_and_makes_the_report(tmp_path: Path) -> None:
    (tmp_path / "demo.db").write_text("the last run's database")
    out = demo(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Report PDF" in out.stdout
    found = re.search(r"^Report PDF \((\d+) page\(s\), (\d+) bytes\): (.+\.pdf)$", out.stdout, re.M)
    assert found, out.stdout
    pdf = Path(found[3])
    assert pdf.is_relative_to(tmp_path / "artifacts") and pdf.stat().st_size == int(found[2])
    assert pdf.read_bytes().startswith(b"%PDF-")
    # Live progress of each kind of job, the retry, and the chain's parents.
    for job_type in (j.name for j in jobs.ALL_JOBS):
        assert re.search(rf"#\d+ {re.escape(job_type)} progress ", out.stdout), job_type
    results = out.stdout.split("\nResults:\n", 1)[1]
    assert results.count(" succeeded after ") == 8, results
    assert "demo.wordcount succeeded after 2 attempt(s)" in results
    assert re.search(
        r"#(\d+) demo\.report\.cover succeeded after 1 attempt\(s\) \(enqueued by #1\)", results
    )
    assert re.search(
        r"demo\.report\.pdf succeeded after 1 attempt\(s\) \(enqueued by #\d+\)", results
    )


def test_demo_without_the_plugins_says_what_to_install(tmp_path: Path) -> None:
    out = demo(tmp_path, BRAINS_JOBS_PLUGINS_DENY="image-generation,pdf-export")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(
        "The report workflow needs these plugins: pip install "
        "brains-jobs-image-generation brains-jobs-pdf-export\n"
    )
    assert "demo.report" not in out.stdout and "Report PDF" not in out.stdout
    assert out.stdout.count(" succeeded after ") == 5


def test_demo_errors_exit_with_a_message(tmp_path: Path) -> None:
    out = brains_jobs(tmp_path, "demo", "--db", "nosuchdb://x", "--plain")
    assert out.returncode == 2
    assert out.stderr.startswith("error: no store for database URL 'nosuchdb://x'")
    assert brains_jobs(tmp_path, "demo", "--plainly").returncode == 2
