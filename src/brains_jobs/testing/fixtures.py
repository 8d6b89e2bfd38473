"""pytest fixtures for plugin authors, installed through the `pytest11` entry point.

- `bj_runtime_factory`: `async with bj_runtime_factory(plugins=[my_plugin]) as rt:` opens
  a runtime on a temporary SQLite file (no entry-point plugins).
- `bj_run_job`: `await bj_run_job(rt, my_job, {"url": ...})` returns the typed output.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from .. import testing
from ..runtime import Runtime


@pytest.fixture
def bj_runtime_factory(
    tmp_path: Path,
) -> Callable[..., contextlib.AbstractAsyncContextManager[Runtime]]:
    """Open runtimes on temporary SQLite files: `async with bj_runtime_factory(...) as rt`."""
    counter = itertools.count()

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[Runtime]:
        async with testing.runtime(tmp_path / f"runtime-{next(counter)}", **options) as rt:
            yield rt

    return factory


@pytest.fixture
def bj_run_job() -> Callable[..., Any]:
    """`await bj_run_job(rt, definition, input)`: run one job inline, return its output."""
    return testing.run_job
