"""The PostgreSQL store's connections, statement running and schema.

The hot statements run on a pool of raw asyncpg connections as prepared statements with
generic plans, one statement (one round trip) per batch. The store keeps one of the pool's
connections for itself: a call that finds it free runs on it and skips the pool's acquire
and release (a timer and a task, about a fifth of a single enqueue's CPU).
SQLAlchemy serves the queries built with Core (`list_jobs`) and the host application's
own connections. Every statement has a time limit (`statement_timeout`), on the server
and on the client, so that a hung connection never holds a worker.

URL: ``postgresql+asyncpg://user@host:port/db?schema=NAME`` (``postgresql://`` works too;
``schema`` defaults to ``brains_jobs``). All tables live in that schema.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg  # type: ignore[import-untyped]  # no stubs; typed here at the edges
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ...exceptions import ConfigurationError, StoreError
from .. import migrations
from .._common import EngineHolder
from ..roles import Store

T = TypeVar("T")

logger = logging.getLogger("brains_jobs.store.postgres")

DEFAULT_SCHEMA = "brains_jobs"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,55}")  # leaves room for ".events"
_CONNECT_TIMEOUT = 10.0

# Driver failures, wrapped in StoreError at this package's edge.
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


class PostgresBase(EngineHolder, Store):
    """Pool, engine, statement running and migrations; the roles are mixins over this."""

    poll_interval = 1.0  # NOTIFY wakes waiters; polling only covers a lost notification

    def __init__(self, url: str, *, pool_size: int = 10, statement_timeout: float = 10.0) -> None:
        super().__init__()
        self.url = url
        self.dsn, self.schema = parse_url(url)
        self.pool_size = pool_size
        self.statement_timeout = statement_timeout
        self.work_channel = f"{self.schema}.work"
        self.events_channel = f"{self.schema}.events"
        self._substitutions = {
            "{{schema}}": f'"{self.schema}"',
            "{{work_channel}}": self.work_channel,
            "{{events_channel}}": self.events_channel,
            "{{fence_ns}}": str(zlib.crc32(self.schema.encode()) & 0x7FFFFF),
        }
        self._pool: asyncpg.Pool | None = None
        # A pooled connection the store holds, for calls that find it free (see run).
        self._kept: asyncpg.pool.PoolConnectionProxy | None = None
        self._kept_busy = False
        self._engine: AsyncEngine | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._own_pids: set[int] = set()

    def sql(self, sql: str) -> str:
        """`sql` with this store's schema, channels and fence namespace filled in."""
        for placeholder, value in self._substitutions.items():
            sql = sql.replace(placeholder, value)
        return sql

    # -- lifetime ---------------------------------------------------------------------

    async def open(self, *, create_schema: bool = True) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size + 1,  # the kept one, and pool_size for the rest
                timeout=min(_CONNECT_TIMEOUT, max(self.statement_timeout, 1.0)),
                command_timeout=self.statement_timeout,
                # The claim's custom plans are no better than its generic one, yet the
                # plan cache keeps re-planning it (a third of its cost) unless told not to.
                server_settings={
                    **self.server_settings("pool"),
                    "plan_cache_mode": "force_generic_plan",
                    "statement_timeout": str(int(self.statement_timeout * 1000)),
                },
                init=self._init_connection,
                reset=_keep_session,
            )
        except DB_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {describe_error(exc)}") from exc
        try:
            if create_schema:
                await self.migrate()
            self._store_id = await self._read_store_id()
            await self._warm_up()
        except BaseException:
            pool, self._pool = self._pool, None
            await self._return_kept(pool)
            await pool.close()
            raise
        self._engine = create_async_engine(
            "postgresql+asyncpg://" + self.dsn.partition("://")[2],
            pool_size=2,
            max_overflow=8,
            pool_pre_ping=True,
            pool_timeout=self.statement_timeout,
            connect_args={
                "server_settings": self.server_settings("engine"),
                "command_timeout": self.statement_timeout,
            },
        )
        # Tasks the store owns from open() to close(), not a task group: the two are
        # often called from different tasks (an application's startup and shutdown
        # hooks, or several stores opened side by side), which a cancel scope entered in
        # open() would not survive. asyncpg ties this store to asyncio anyway.
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(coro, name=f"brains_jobs {name} {self.schema}")
            for name, coro in self._background().items()
        ]

    def _background(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The store's own background tasks, by name (the wake-ups mixin adds them)."""
        return {}

    async def _warm_up(self) -> None:
        """Prepare the hot statements (the queue mixin says which)."""

    async def _before_close(self) -> None:
        """Last writes before the connections go (the wake-ups mixin flushes)."""

    async def close(self) -> None:
        if self._pool is not None:
            with anyio.move_on_after(2.0):
                await self._before_close()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # close() itself is being cancelled
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._return_kept(pool)
            with anyio.move_on_after(10) as scope:
                await pool.close()
            if scope.cancelled_caught:
                pool.terminate()

    def server_settings(self, role: str) -> dict[str, str]:
        """Session settings of this store's connections; `role` names them for a DBA."""
        return {
            "search_path": f'"{self.schema}"',
            # pg_stat_activity tells a DBA which connection is what (63 bytes at most).
            "application_name": f"brains_jobs {role} {self.schema}"[:63],
            "TimeZone": "UTC",
        }

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        pid = conn.get_server_pid()
        self._own_pids.add(pid)
        conn.add_termination_listener(lambda _c: self._own_pids.discard(pid))

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool of the hot path (open the store first)."""
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    def describe(self) -> str:
        parts = urlsplit(self.dsn)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"PostgreSQL {user}{host}{port}{parts.path} schema {self.schema}"

    async def run(
        self,
        what: str,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        idempotent: bool = False,
    ) -> T:
        """Run `fn` on a pooled connection; driver errors become `StoreError`.

        An `idempotent` call that finds its connection dead (the server restarted or
        terminated it) runs again on another: after an outage every pooled connection
        is dead at once. Other calls may have taken effect, so they fail.
        """
        attempts = self.pool_size + 1 if idempotent else 1
        pool = self.pool
        for attempt in range(1, attempts + 1):
            try:
                conn = await self._take(pool)
                clean = False
                try:
                    result = await fn(conn)
                    clean = True
                    return result
                except DB_ERRORS as exc:
                    if attempt == attempts or not connection_lost(exc, conn):
                        raise
                finally:
                    if not self._keep(conn, clean=clean):
                        await pool.release(conn)
                logger.info("PostgreSQL connection lost during %s; trying another", what)
            except DB_ERRORS as exc:
                raise StoreError(f"PostgreSQL {what} failed: {describe_error(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _take(self, pool: asyncpg.Pool) -> asyncpg.pool.PoolConnectionProxy:
        """The kept connection if it is free, or one from the pool."""
        kept = self._kept
        if kept is not None and not self._kept_busy:
            if _usable(kept):
                self._kept_busy = True
                return kept
            self._kept = None  # the server ended it while it was idle
            await pool.release(kept)
        return await pool.acquire(timeout=self.statement_timeout)

    async def _return_kept(self, pool: asyncpg.Pool) -> None:
        """Give the kept connection back to `pool`, which is closing (a busy one goes back
        when its call ends: `_keep` keeps nothing once the store has no pool).
        """
        kept, self._kept = self._kept, None
        busy, self._kept_busy = self._kept_busy, False
        if kept is not None and not busy:
            await pool.release(kept)

    def _keep(self, conn: asyncpg.pool.PoolConnectionProxy, *, clean: bool) -> bool:
        """Whether `conn`, done with, stays (or becomes) the kept one rather than going back
        to the pool: only a connection whose call ended cleanly, outside a transaction.
        Anything else (an error, a cancellation) goes back to the pool, which rolls back,
        waits out a cancelled statement or replaces a dead connection.
        """
        if conn is self._kept:
            self._kept_busy = False
        elif self._kept is not None or self._pool is None:
            return False  # another is kept, or the store is closing
        fit = clean and _usable(conn) and not conn.is_in_transaction()
        self._kept = conn if fit else None
        return fit

    async def fetch(
        self, what: str, sql: str, *args: Any, idempotent: bool = False
    ) -> list[asyncpg.Record]:
        """Run one statement and return its rows (see `run`)."""

        async def fetch(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

        return await self.run(what, fetch, idempotent=idempotent)

    async def read(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Run a read-only statement (retried on another connection if one is dead)."""
        return await self.fetch("read", sql, *args, idempotent=True)

    # -- schema -----------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        steps = migrations.load("postgresql")
        table = f'"{self.schema}".brains_jobs_migrations'

        async def apply(conn: asyncpg.Connection) -> list[str]:
            if {s.name for s in steps} <= await _applied_names(conn, table):
                return []  # the common case: no lock taken
            async with conn.transaction():
                await conn.execute("SET LOCAL statement_timeout = 0")
                # Many workers may start at once: one migrates, the others wait and then
                # find nothing left to do.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"brains_jobs.migrate:{self.schema}",
                    timeout=None,
                )
                await conn.execute(self._migrations_preamble())
                done = await _applied_names(conn, table)
                applied = []
                for step in steps:
                    if step.name in done:
                        continue
                    await conn.execute(self.sql(step.sql), timeout=None)
                    await conn.execute(f"INSERT INTO {table} (name) VALUES ($1)", step.name)
                    applied.append(step.name)
                return applied

        applied = await self.run("migration", apply)
        if applied:
            logger.info("schema %s: applied migrations %s", self.schema, ", ".join(applied))
        if self._pool is not None:
            self._store_id = await self._read_store_id()
        return applied

    async def pending_migrations(self) -> list[str]:
        table = f'"{self.schema}".brains_jobs_migrations'
        done = await self.run("read", lambda conn: _applied_names(conn, table), idempotent=True)
        return [m.name for m in migrations.load("postgresql") if m.name not in done]

    async def _read_store_id(self) -> str | None:
        async def read(conn: asyncpg.Connection) -> str | None:
            table = f'"{self.schema}".brains_jobs_meta'
            if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                return None
            value = await conn.fetchval(f"SELECT value FROM {table} WHERE key = 'store_id'")
            return None if value is None else str(value)

        return await self.run("read", read, idempotent=True)

    def _migrations_preamble(self) -> str:
        q = f'"{self.schema}"'
        return (
            f"CREATE SCHEMA IF NOT EXISTS {q};\n"
            f"CREATE TABLE IF NOT EXISTS {q}.brains_jobs_migrations (\n"
            "    name       text PRIMARY KEY,\n"
            "    applied_at timestamptz NOT NULL DEFAULT now()\n"
            ");\n"
        )

    def migration_sql(self) -> str:
        q = f'"{self.schema}"'
        lock = f"hashtextextended('brains_jobs.migrate:{self.schema}', 0)"
        parts = [
            f"-- brains-jobs schema {q}: run in one transaction.\n"
            f"BEGIN;\nSELECT pg_advisory_xact_lock({lock});\n" + self._migrations_preamble()
        ]
        parts.extend(
            f"-- {step.name}\n{self.sql(step.sql)}\n"
            f"INSERT INTO {q}.brains_jobs_migrations (name) VALUES ('{step.name}')"
            " ON CONFLICT DO NOTHING;\n"
            for step in migrations.load("postgresql")
        )
        parts.append("COMMIT;\n")
        return "\n".join(parts)


async def _applied_names(conn: asyncpg.Connection, table: str) -> set[str]:
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
        return set()
    return {r[0] for r in await conn.fetch(f"SELECT name FROM {table}")}


def parse_url(url: str) -> tuple[str, str]:
    """The asyncpg DSN and the schema of a `postgresql[+asyncpg]://` URL."""
    parts = urlsplit(url)
    scheme, _, driver = parts.scheme.partition("+")
    if scheme not in ("postgresql", "postgres") or driver not in ("", "asyncpg"):
        raise ConfigurationError(
            f"the PostgreSQL store needs a postgresql+asyncpg:// URL, got {parts.scheme}://"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(
            f"schema {schema!r}: use letters, digits and underscores, at most 56 characters"
        )
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return dsn, schema


def connection_lost(exc: BaseException, conn: asyncpg.Connection) -> bool:
    """True when `exc` means the connection itself is gone (not the statement failed)."""
    if isinstance(
        exc,
        asyncpg.ConnectionDoesNotExistError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | ConnectionError,
    ):
        return True
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool already took the dead connection back
        return True


def _usable(conn: asyncpg.pool.PoolConnectionProxy) -> bool:
    """False once the connection is closed (the pool takes a dead one back itself)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # already taken back: the proxy is detached
        return False


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query (a round trip per release): no statement here leaves
    session state behind (locks are transaction-level, nothing LISTENs on the pool).
    """


def describe_error(exc: BaseException) -> str:
    """A driver error in one line."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
