"""A short run of `benchmarks/sqlite_processes.py`: a worker process picks up the jobs
enqueued here, and every job's progress event reaches this process's subscription.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sqlite_processes_prints_pickup_event_and_idle_figures() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "sqlite_processes.py"),
            "--jobs",
            "20",
            "--quiet",
            "0.5",
            "--idle",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["store"] == "sqlite" and result["jobs"] == 20
    for measure in ("pickup_ms", "event_ms"):
        figures = result[measure]
        assert 0 < figures["p50"] <= figures["p90"] <= figures["p99"] <= figures["max"]
    assert 0 <= result["idle_cpu_percent"] < 100
