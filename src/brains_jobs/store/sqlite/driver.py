"""aiosqlite, one round trip per statement.

aiosqlite runs every call on a thread of its connection and wakes the event loop with
the answer: each call is a thread switch there and back. Through SQLAlchemy's adapter a
statement takes four of them (open a cursor, execute, fetch, close) and a transaction
two more (`BEGIN`, `COMMIT`); on a busy machine a switch costs tens to hundreds of
microseconds, which made most of the time a job waited between its enqueue and its
start.

`Connection` is aiosqlite's connection with cursors that execute a statement, fetch its
rows and close in one call, a `BEGIN` that travels with the transaction's first
statement, and no call at all for a commit or rollback when no transaction is open. A
transaction of n statements takes n + 1 trips, a statement alone one. SQLAlchemy's
adapter drives it unchanged (`async_creator` of the engine).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import aiosqlite

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import TextClause

Description = tuple[tuple[Any, ...], ...] | None
Done = tuple[Description, int, int | None, list[Any]]


class Connection(aiosqlite.Connection):
    """An aiosqlite connection whose statements take one trip to its thread each."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        # As SQLAlchemy's own connector does: a connection left open must not keep
        # the interpreter from exiting.
        self._thread.daemon = True
        self._begin: str | None = None

    def begin_with_next(self, statement: str) -> None:
        """Send `statement` (`BEGIN` or `BEGIN IMMEDIATE`) along with the next one."""
        self._begin = statement

    @property
    def in_transaction(self) -> bool:
        if self._begin is not None:
            return True
        connection = self._connection
        return connection is not None and connection.in_transaction

    def cursor(self) -> Cursor:  # type: ignore[override]  # no trip: see Cursor
        return Cursor(self)

    async def commit(self) -> None:
        if self._ended():
            return
        await super().commit()

    async def rollback(self) -> None:
        if self._ended():
            return
        await super().rollback()

    def _ended(self) -> bool:
        """True when there is nothing to commit or roll back (a `BEGIN` never sent is
        dropped): the connection is closed or outside any transaction.
        """
        self._begin = None
        connection = self._connection
        return connection is None or not connection.in_transaction

    def _run(self, sql: str, parameters: Any, many: bool) -> Done:
        """On the connection's thread: the pending BEGIN, the statement, its rows."""
        connection = self._conn
        begin, self._begin = self._begin, None
        if begin is not None:
            connection.execute(begin)
        cursor = connection.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return cursor.description, cursor.rowcount, cursor.lastrowid, rows
        finally:
            cursor.close()

    async def run(self, sql: str, parameters: Any = (), *, many: bool = False) -> Done:
        """Run one statement (with a pending BEGIN) on the connection's thread."""
        # aiosqlite's own way onto its thread, which each of its public calls takes.
        done: Done = await self._execute(self._run, sql, parameters, many)  # type: ignore[no-untyped-call]
        return done


class Cursor:
    """A cursor holding the whole outcome of its last statement: opening, fetching and
    closing it cost no trip.
    """

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.description: Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rows = []

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        done = await self._connection.run(sql, parameters)
        self.description, self.rowcount, self.lastrowid, self._rows = done
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        done = await self._connection.run(sql, list(parameters), many=True)
        self.description, self.rowcount, self.lastrowid, self._rows = done
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows, self._rows = self._rows[:count], self._rows[count:]
        return rows

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []


class Executes(Protocol):
    """What the store's text statements need of a connection: SQLAlchemy's
    `AsyncConnection`, or `Statements` on the store's own.
    """

    async def execute(self, statement: TextClause, parameters: Mapping[str, Any], /) -> Any:
        """Run `statement` with `parameters`; its rows come back."""


class Rows(list[Any]):
    """A statement's rows, read as SQLAlchemy's results are."""

    def all(self) -> list[Any]:
        return list(self)

    def first(self) -> Any:
        return self[0] if self else None

    def scalar(self) -> Any:
        return self[0][0] if self else None


class Statements:
    """Text statements on a `Connection`, one round trip each, none of SQLAlchemy's
    layers (the store's own connection, in a transaction the store began).
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(self, statement: TextClause, parameters: Mapping[str, Any], /) -> Rows:
        return Rows((await self._connection.run(statement.text, parameters))[3])


async def connect(database: str, **kwargs: Any) -> Connection:
    """Open `database` (a path or `:memory:`) with `sqlite3.connect`'s `kwargs`."""
    connection = Connection(partial(sqlite3.connect, database, **kwargs))
    await connection  # starts its thread and connects there
    return connection
