"""The SQLite store's connections, transactions and schema.

SQLite lets one writer in at a time. Within a process, writes queue on a lock so that
they never wait on each other inside SQLite; across processes, `busy_timeout` waits for
the lock and a transaction that still finds the database locked is tried again (until
the statement timeout), so that "database is locked" never reaches a job. Times are the
local clock's epoch seconds: every process sharing a file is on this machine.

Two paths reach the file. SQLAlchemy's pool serves the roles' queries of every kind
(`_read`, `_write`). What every job goes through (enqueue, claim, start, heartbeats,
results, the event feed) takes the store's own two connections instead, one that
writes and one that reads (`_statement`, `_transaction`): text statements, one round
trip each to the connection's thread, none of SQLAlchemy's layers (`driver`).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ...exceptions import ConfigurationError, StoreError
from .. import migrations
from .._common import EngineHolder
from ..roles import Store
from . import driver
from .watcher import CommitWatcher

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.pool import ConnectionPoolEntry
    from sqlalchemy.sql.elements import TextClause

T = TypeVar("T")

# Seconds between polls of a file whose commits are watched: a fallback only.
WATCHED_POLL = 5.0

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS brains_jobs_migrations "
    "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
)


def _is_locked(exc: BaseException | None) -> bool:
    message = str(exc).lower()
    return "database is locked" in message or "database is busy" in message


def database_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for an in-memory database."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.partition("+")[0] != "sqlite":
        raise ConfigurationError(f"not an SQLite URL: {url!r}")
    if scheme != "sqlite+aiosqlite":
        raise ConfigurationError(
            f"the SQLite store runs on aiosqlite: use sqlite+aiosqlite://{rest}"
            f" instead of {scheme}://{rest}"
        )
    path = rest.partition("?")[0]
    if path in ("", "/", "/:memory:"):
        return None
    if not path.startswith("/"):
        raise ConfigurationError(
            f"cannot read {url!r}: use sqlite+aiosqlite:///relative/path.db or"
            " sqlite+aiosqlite:////absolute/path.db"
        )
    return Path(path[1:])


class SQLiteBase(EngineHolder, Store):
    """Connections, transactions and migrations; the roles are mixins over this."""

    poll_interval = 0.1  # an in-memory database; a file is watched (see `watcher`)

    def __init__(
        self, url: str, *, statement_timeout: float = 10.0, create_file: bool = True
    ) -> None:
        super().__init__()
        self.url = url
        self.path = database_path(url)
        self.statement_timeout = statement_timeout
        self.create_file = create_file
        self._engine: AsyncEngine | None = None
        self._write_lock = anyio.Lock()
        self._memory = self.path is None
        self._watcher: CommitWatcher | None = None
        # The store's own connections to a file (none in memory): one for the writes
        # of `_statement` and `_transaction`, in this process's turn, one for reads.
        self._writer: driver.Connection | None = None
        self._reader: driver.Connection | None = None

    # -- lifetime ---------------------------------------------------------------------

    async def open(self, *, create_schema: bool = True) -> None:
        if self.path is not None and not self.create_file and not self.path.exists():
            raise StoreError(f"no database at {self.path} (nothing to read; a worker creates it)")
        busy_ms = max(1, int(min(self.statement_timeout, 5.0) * 1000))
        connect = partial(
            driver.connect,
            ":memory:" if self.path is None else str(self.path),
            timeout=busy_ms / 1000,
            check_same_thread=self._memory,
        )
        engine = create_async_engine(self.url, async_creator=connect)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
            # Transactions are begun by hand below, so that writers can take the lock
            # up front (BEGIN IMMEDIATE) instead of upgrading and deadlocking.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            if options.get("brains_jobs_single", False):
                return  # one statement reads one snapshot: no transaction needed
            write = options.get("brains_jobs_write", False)
            # Sent with the transaction's first statement, in its round trip.
            sqlite: Any = conn.connection.driver_connection
            sqlite.begin_with_next("BEGIN IMMEDIATE" if write else "BEGIN")

        self._engine = engine
        try:
            if create_schema:
                await self.migrate()
            self._store_id = await self._read(_read_store_id)
            if self.path is not None:
                self._writer = await self._connect(busy_ms)
                self._reader = await self._connect(busy_ms)
        except BaseException:
            await self.close()
            raise
        if self.path is not None:
            self._watcher = CommitWatcher(
                self.path, on_events=self.event_signal.notify, on_work=self.work_signal.notify
            )
            self._watcher.start()
            self.poll_interval = WATCHED_POLL

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for own in (self._writer, self._reader):
            if own is not None:
                await own.close()
        self._writer = self._reader = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _connect(self, busy_ms: int) -> driver.Connection:
        assert self.path is not None
        own = await driver.connect(str(self.path), timeout=busy_ms / 1000, isolation_level=None)
        for pragma in (f"PRAGMA busy_timeout={busy_ms}", "PRAGMA synchronous=NORMAL"):
            await own.run(pragma)
        return own

    def describe(self) -> str:
        return f"SQLite {self.path or ':memory:'}"

    async def _write(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, single: bool = False
    ) -> T:
        """Run `fn` in one write transaction, retrying while other processes hold the
        lock. With `single` (an `fn` of one statement, atomic by itself), no
        transaction is begun around it: that spares the BEGIN and the COMMIT their round
        trips to aiosqlite's thread.
        """
        options = {"brains_jobs_single": True} if single else {"brains_jobs_write": True}

        async def attempt() -> T:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**options)
                async with conn.begin():
                    return await fn(conn)

        return await self._retrying(attempt)

    async def _statement(
        self, statement: TextClause, params: Mapping[str, Any], *, write: bool
    ) -> list[Any]:
        """The rows of one statement (atomic by itself), run on one of the store's own
        connections: one round trip to its thread and none of SQLAlchemy's layers. For
        the statements every job goes through (enqueue, claim, start, heartbeat). An
        in-memory database has a single connection: there it goes the usual way.
        """
        direct = self._writer if write else self._reader
        if direct is None:

            async def run(conn: AsyncConnection) -> list[Any]:
                return list((await conn.execute(statement, params)).all())

            if write:
                return await self._write(run, single=True)
            return await self._read(run, single=True)

        async def attempt() -> list[Any]:
            return (await direct.run(statement.text, params))[3]

        if write:
            return await self._retrying(attempt)
        try:
            with anyio.CancelScope(shield=True):  # see _retrying
                rows = await attempt()
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from exc
        return rows

    async def _transaction(self, fn: Callable[[driver.Executes], Awaitable[T]]) -> T:
        """Run `fn`, whose statements are all text, in one write transaction on the
        store's own writing connection: a round trip per statement and one for the
        commit (the `BEGIN` goes with the first). In memory, through `_write`.
        """
        writer = self._writer
        if writer is None:
            return await self._write(fn)

        async def attempt() -> T:
            writer.begin_with_next("BEGIN IMMEDIATE")
            try:
                result = await fn(driver.Statements(writer))
                await writer.commit()
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one
                    await writer.rollback()  # no round trip when none is open
                raise
            return result

        return await self._retrying(attempt)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run a write `attempt` in this process's turn, again while other processes
        hold the lock (until the statement timeout).
        """
        deadline = time.monotonic() + max(self.statement_timeout, 1.0)
        delay = 0.005
        async with self._write_lock:
            while True:
                try:
                    # Shielded: a statement cancelled half-way leaves aiosqlite's thread
                    # and the pooled connection in a state that cannot be closed cleanly.
                    # Statements are short; cancellation lands right after.
                    with anyio.CancelScope(shield=True):
                        result = await attempt()
                    return result
                except (DBAPIError, sqlite3.Error) as exc:
                    cause = exc.orig if isinstance(exc, DBAPIError) else exc
                    if not _is_locked(cause) or time.monotonic() > deadline:
                        raise StoreError(f"SQLite write failed: {cause}") from exc
                await anyio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)

    async def _read(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, single: bool = False
    ) -> T:
        """Run `fn` in a read transaction; with `single` (an `fn` of one statement,
        which reads one snapshot by itself) outside of any, as `_write` does.
        """
        if self._memory:
            # An in-memory database lives on one connection: share the writer's turn.
            async with self._write_lock:
                return await self._read_now(fn, single)
        return await self._read_now(fn, single)

    async def _read_now(self, fn: Callable[[AsyncConnection], Awaitable[T]], single: bool) -> T:
        try:
            with anyio.CancelScope(shield=True):  # see _write
                async with self.engine.connect() as conn:
                    if single:
                        conn = await conn.execution_options(brains_jobs_single=True)
                    async with conn.begin():
                        result = await fn(conn)
        except DBAPIError as exc:
            raise StoreError(f"SQLite read failed: {exc.orig}") from exc
        return result

    # -- schema -----------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        steps = migrations.load("sqlite")

        async def apply(conn: AsyncConnection) -> list[str]:
            await conn.exec_driver_sql(_MIGRATIONS_TABLE)
            done = {
                row[0]
                for row in await conn.exec_driver_sql("SELECT name FROM brains_jobs_migrations")
            }
            applied = []
            for step in steps:
                if step.name in done:
                    continue
                for statement in split_statements(step.sql):
                    await conn.exec_driver_sql(statement)
                await conn.execute(
                    text("INSERT INTO brains_jobs_migrations VALUES (:name, :now)"),
                    {"name": step.name, "now": time.time()},
                )
                applied.append(step.name)
            return applied

        applied = await self._write(apply)
        if self._store_id is None and self._engine is not None:
            self._store_id = await self._read(_read_store_id)
        return applied

    async def pending_migrations(self) -> list[str]:
        async def read(conn: AsyncConnection) -> set[str]:
            exists = (
                await conn.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE name = 'brains_jobs_migrations'"
                )
            ).first()
            if exists is None:
                return set()
            return {
                r[0] for r in await conn.exec_driver_sql("SELECT name FROM brains_jobs_migrations")
            }

        done = await self._read(read)
        return [m.name for m in migrations.load("sqlite") if m.name not in done]

    def migration_sql(self) -> str:
        return "\n".join(f"-- {m.name}\n{m.sql}" for m in migrations.load("sqlite"))


async def _read_store_id(conn: AsyncConnection) -> str | None:
    try:
        row = (
            await conn.exec_driver_sql("SELECT value FROM brains_jobs_meta WHERE key = 'store_id'")
        ).first()
    except DBAPIError:  # no schema yet (create_schema=False)
        return None
    return None if row is None else str(row[0])


def split_statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers hold semicolons of their own)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current.append(line)
        candidate = "\n".join(current)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            current = []
    if current and "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements
