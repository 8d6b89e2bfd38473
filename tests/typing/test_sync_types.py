"""mypy sees `client.result(handle)` of a `SyncClient` as the definition's output model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.typing.test_types import mypy

HERE = Path(__file__).parent

pytestmark = pytest.mark.slow


def test_sync_client_results_are_typed() -> None:
    result = mypy(HERE / "sync_ok.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_model_from_the_sync_client_is_a_type_error() -> None:
    result = mypy(HERE / "sync_bad.py")
    assert result.returncode == 1
    assert "sync_bad.py:25" in result.stdout, result.stdout
    assert '"Page"' in result.stdout and '"Req"' in result.stdout, result.stdout
    assert "[assignment]" in result.stdout, result.stdout
