"""A connection of the tests' own to PostgreSQL, beside the stores under test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from tests.conftest import PG_DSN


@contextlib.asynccontextmanager
async def admin(schema: str | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test database (with `schema` first on its search path)."""
    settings = {} if schema is None else {"search_path": f'"{schema}"'}
    conn = await asyncpg.connect(PG_DSN, server_settings=settings)
    try:
        yield conn
    finally:
        await conn.close()
