"""A smoke run of `benchmarks/web_bench.py`: the API measurement against a real server,
briefly, prints a JSON line with a positive request rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_web_bench_api_get_prints_a_json_line() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "web_bench.py"),
            "--quick",
            "--only",
            "api_get",
            "--seconds",
            "1",
            "--warmup",
            "0.3",
            "--clients",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [r["bench"] for r in results] == ["api_get"]
    assert results[0]["rps"] > 0 and results[0]["errors"] == 0
    assert results[0]["store"] == "sqlite"
