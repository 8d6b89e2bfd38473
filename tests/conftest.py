"""Fixtures shared by every tier: the anyio backend, database URLs for both stores, and
runtimes with the test suite's job types.

The `database_url` fixture runs a test once on SQLite and once on PostgreSQL. Each
PostgreSQL test gets a schema of its own, dropped afterwards. When PostgreSQL is not
reachable, those tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

import brains_jobs as bj
from tests.support import jobs as support_jobs

# The test plugin, findable through its entry point by this process (and, through
# PYTHONPATH, by the processes tests start) but never installed: see tests/support/site.
SITE = Path(__file__).resolve().parent / "support" / "site"
if str(SITE) not in sys.path:
    sys.path.append(str(SITE))

PG_DSN = os.environ.get("BRAINS_JOBS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_pg_error: str | None = None
_pg_checked = False


def require_postgres() -> None:
    """Skip (or under CI=true, fail) when PostgreSQL cannot be reached."""
    global _pg_checked, _pg_error
    if not _pg_checked:
        _pg_checked = True
        try:
            asyncio.run(_pg("SELECT 1"))
        except Exception as exc:
            _pg_error = f"PostgreSQL at {PG_DSN} is not reachable: {exc!r}"
    if _pg_error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(_pg_error + " (CI=true: PostgreSQL is required)")
        pytest.skip(_pg_error)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name on the test PostgreSQL server, dropped after the test."""
    require_postgres()
    schema = f"bj_test_{uuid.uuid4().hex[:12]}"
    yield schema
    asyncio.run(_pg(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def pg_url(schema: str) -> str:
    base = PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}?schema={schema}"


def _off_the_loop(call: Callable[[], object]) -> None:
    """Run `call` in a thread of its own: it may start an event loop where one runs
    already (Playwright's sync API runs one in the test's thread).
    """
    with ThreadPoolExecutor(1) as pool:
        pool.submit(call).result()


@contextmanager
def empty_database(store: str, folder: Path, prefix: str) -> Iterator[str]:
    """A URL for an empty database for the length of the block: an SQLite file in
    `folder`, or a fresh PostgreSQL schema named `prefix_<random>`, dropped afterwards.
    """
    if store == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'jobs.db'}"
        return
    _off_the_loop(require_postgres)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield pg_url(schema)
    finally:
        drop = f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'
        _off_the_loop(lambda: asyncio.run(_pg(drop)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
        return
    schema = request.getfixturevalue("pg_schema")
    yield pg_url(schema)


@pytest.fixture
async def rt(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    """An open runtime with the test job types, on each store."""
    async with bj.Runtime(
        database_url,
        jobs=support_jobs.ALL,
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
        lease=5.0,
    ) as runtime:
        yield runtime
