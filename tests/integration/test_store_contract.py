"""The store contract (`brains_jobs.testing.contract`) on both built-in stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from brains_jobs.store.postgres import PostgresStore
from brains_jobs.store.sqlite import SQLiteStore
from brains_jobs.testing.contract import StoreContract
from tests.conftest import pg_url


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteStore]:
        store = SQLiteStore(f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}")
        await store.open()
        yield store
        await store.close()


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    async def store(self, pg_schema: str) -> AsyncIterator[PostgresStore]:
        store = PostgresStore(pg_url(pg_schema))
        await store.open()
        yield store
        await store.close()
