"""A short run of `benchmarks/sqlite_processes.py`: a worker process picks up the jobs
enqueued here, and every job's progress event reaches this process's subscription.
"""

from __future__ import annotations

import json

import pytest

from tests.support.benchmarks import run_benchmark


@pytest.mark.slow
def test_sqlite_processes_prints_pickup_event_and_idle_figures() -> None:
    printed = run_benchmark(
        "sqlite_processes.py", "--jobs", "20", "--quiet", "0.5", "--idle", "1", timeout=120
    )
    result = json.loads(printed)
    assert result["store"] == "sqlite" and result["jobs"] == 20
    for measure in ("pickup_ms", "event_ms"):
        figures = result[measure]
        assert 0 < figures["p50"] <= figures["p90"] <= figures["p99"] <= figures["max"]
    assert 0 <= result["idle_cpu_percent"] < 100
