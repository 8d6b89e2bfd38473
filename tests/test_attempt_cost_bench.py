"""A short run of `benchmarks/attempt_cost.py`: it runs real attempts (each asserts its
output) and prints their CPU per attempt.
"""

from __future__ import annotations

import json

from tests.support.benchmarks import run_benchmark


def test_attempt_cost_runs_attempts_and_prints_their_cpu() -> None:
    result = json.loads(
        run_benchmark("attempt_cost.py", "--jobs", "50", "--repeats", "2", timeout=60)
    )
    assert result["jobs"] == 50 and result["repeats"] == 2
    assert result["cpu_us_per_attempt"] > 0
