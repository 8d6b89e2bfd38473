"""mypy sees `await handle.result()` as the definition's output model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.slow


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            "",
            "--python-version",
            "3.11",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_typed_handle_results() -> None:
    result = mypy(HERE / "sample_ok.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_wrong_model_is_a_type_error() -> None:
    result = mypy(HERE / "sample_bad.py")
    assert result.returncode == 1
    assert "sample_bad.py:25" in result.stdout, result.stdout
    assert '"Page"' in result.stdout and '"Req"' in result.stdout, result.stdout
    assert "[assignment]" in result.stdout, result.stdout


def test_chain_and_group_results_are_typed() -> None:
    result = mypy(HERE / "chain_ok.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_chain_link_that_does_not_fit_is_a_type_error() -> None:
    result = mypy(HERE / "chain_bad.py")
    assert result.returncode == 1
    assert "chain_bad.py:34" in result.stdout, result.stdout
