"""Shared fixtures for the demo plugin's tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests see every installed plugin, whatever BRAINS_JOBS_* the shell has set."""
    for name in list(os.environ):
        if name.startswith("BRAINS_JOBS_"):
            monkeypatch.delenv(name)
