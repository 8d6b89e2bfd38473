"""The SQLite store's connection (`store.sqlite.driver`): a statement takes one round trip
to aiosqlite's thread, a transaction one more, and transactions still begin, commit and
roll back exactly as SQLite's own do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import brains_jobs as bj
from brains_jobs.store.sqlite import driver
from tests.support import jobs

pytestmark = pytest.mark.anyio


class Counted(driver.Connection):
    """Counts its trips to the thread."""

    trips = 0

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        Counted.trips += 1
        return await super()._execute(fn, *args, **kwargs)


async def counted(database: str) -> driver.Connection:
    connection = Counted(lambda: sqlite3.connect(database, isolation_level=None))
    await connection
    return connection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    path = tmp_path / "trips.db"
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", async_creator=lambda: counted(str(path))
    )

    @event.listens_for(engine.sync_engine, "begin")
    def begin(conn: Any) -> None:  # as the store does
        if not conn.get_execution_options().get("single", False):
            conn.connection.driver_connection.begin_with_next("BEGIN IMMEDIATE")

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    await engine.dispose()


async def trips_of(engine: AsyncEngine, statements: list[str], *, begin: bool) -> int:
    async with engine.connect() as conn:
        if not begin:
            conn = await conn.execution_options(single=True)
        before = Counted.trips
        for statement in statements:
            await conn.execute(text(statement))
        await conn.commit()
        return Counted.trips - before


def driver_of(conn: AsyncConnection) -> Any:
    return conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]


async def test_a_statement_takes_one_trip_and_a_transaction_one_more(
    engine: AsyncEngine,
) -> None:
    assert await trips_of(engine, ["INSERT INTO t (v) VALUES ('a') RETURNING id"], begin=False) == 1
    two = ["INSERT INTO t (v) VALUES ('b')", "SELECT count(*) FROM t"]
    assert await trips_of(engine, two, begin=True) == 3
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all() == [
            "a",
            "b",
        ]


async def test_rows_counts_and_ids_come_back_as_sqlite_gives_them(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(single=True)
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
        assert inserted.rowcount == 1
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "y"}, {"v": "z"}])
        rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "x"), (2, "y"), (3, "z")]
        updated = await conn.execute(text("UPDATE t SET v = upper(v) WHERE id > 1"))
        assert updated.rowcount == 2
        assert (await conn.execute(text("SELECT v FROM t WHERE id = 9"))).first() is None


async def test_a_failed_first_statement_leaves_no_transaction_behind(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError, match="no such table"):
            await conn.execute(text("INSERT INTO missing VALUES (1)"))
        await conn.rollback()
        assert not driver_of(conn).in_transaction
    async with engine.connect() as conn:
        # The same pooled connection: its next statement runs alone, committed at once.
        conn = await conn.execution_options(single=True)
        await conn.execute(text("INSERT INTO t (v) VALUES ('after')"))
        assert not driver_of(conn).in_transaction
    other = sqlite3.connect(str(engine.url.database))
    assert other.execute("SELECT v FROM t").fetchall() == [("after",)]
    other.close()


async def test_a_transaction_that_ran_nothing_leaves_its_begin_unsent(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        before = Counted.trips
        await conn.begin()
        assert driver_of(conn).in_transaction  # a BEGIN is pending: it must be ended
        await conn.rollback()
        assert not driver_of(conn).in_transaction
        assert Counted.trips == before  # nothing was sent for it
        conn = await conn.execution_options(single=True)
        await conn.execute(text("INSERT INTO t (v) VALUES ('alone')"))
        assert not driver_of(conn).in_transaction


async def test_a_rolled_back_transaction_keeps_nothing(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('gone')"))
        assert driver_of(conn).in_transaction
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0


async def test_the_store_enqueues_and_claims_in_one_trip_each(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    async with bj.Runtime(url, jobs=jobs.ALL, load_entrypoints=False) as rt:
        store: Any = rt.store
        direct = store._writer
        calls: list[str] = []
        run = direct.run

        async def counting(sql: str, parameters: Any = (), *, many: bool = False) -> Any:
            calls.append(sql.split()[0])
            return await run(sql, parameters, many=many)

        direct.run = counting
        handle = await rt.enqueue(jobs.add, {"a": 1, "b": 2})
        claimed = await rt.store.claim(
            worker_id="w", queues=None, types=["add"], limit=5, lease=30.0
        )
        assert [j.id for j in claimed] == [handle.id]
        assert calls == ["INSERT", "UPDATE"]
        assert (await rt.get(handle.id)).status is bj.JobStatus.RUNNING
