"""A smoke run of `benchmarks/web_bench.py`: the API measurement against a real server,
briefly, prints a JSON line with a positive request rate.
"""

from __future__ import annotations

import json

import pytest

from tests.support.benchmarks import run_benchmark

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


@pytest.mark.slow
def test_web_bench_api_get_prints_a_json_line() -> None:
    printed = run_benchmark(
        "web_bench.py",
        *("--quick", "--only", "api_get", "--seconds", "1", "--warmup", "0.3"),
        *("--clients", "4"),
        timeout=60,
    )
    results = [json.loads(line) for line in printed.splitlines() if line.strip()]
    assert [r["bench"] for r in results] == ["api_get"]
    assert results[0]["rps"] > 0 and results[0]["errors"] == 0
    assert results[0]["store"] == "sqlite"
