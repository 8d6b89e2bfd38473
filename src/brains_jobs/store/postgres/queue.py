"""The PostgreSQL store's producer and work-queue roles: enqueue, claim, renew, finish."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError

from ...exceptions import StoreError
from ...models import JobStatus
from .. import _common
from ..dependencies import final_parents, link_new, resolve
from ..records import ClaimedJob, ClaimRequest, Enqueued, NewEvent, NewJob, Outcome
from . import args, sql, sql_changes, sql_enqueue
from .connection import DB_ERRORS, describe_error, logger
from .dependencies import PostgresDependencies
from .limits import PostgresLimits

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class PostgresQueue(PostgresLimits):
    """Enqueue, claim, heartbeat, finish and release on PostgreSQL."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        # In the host's transaction no fence: it may stay open for long, and holding every
        # reader back behind it would stall all events; its `queued` events may then reach
        # live subscribers that are already past their seq only through the table.
        self._sql_enqueue = {
            (host, keys): self._enqueue_sql(host=host, keys=keys)
            for host in (False, True)
            for keys in (False, True)
        }
        self._sql_enqueue_plain = {
            (host, one): self._enqueue_sql(host=host, keys=False, plain=True, one=one)
            for host in (False, True)
            for one in (False, True)
        }
        self._sql_find_keys = self.sql(sql_enqueue.HOLDERS)
        self._sql_replace = self.sql(sql_enqueue.REPLACE)
        self._sql_claim = self.sql(sql.CLAIM)
        self._sql_claim_isolated = self.sql(sql.CLAIM_ISOLATED)
        self._sql_next_ready = self.sql(sql.NEXT_READY)
        self._sql_finish = self.sql(sql.FINISH)
        self._sql_finish_succeeded = self.sql(sql.FINISH_SUCCEEDED)
        self._sql_heartbeat = self.sql(sql.HEARTBEAT)
        self._sql_mark_started = self.sql(sql.MARK_STARTED)
        self._sql_cancel_requested = self.sql(sql.CANCEL_REQUESTED)
        self._sql_release = self.sql(sql.RELEASE)
        self._sql_reserve = self.sql(sql_enqueue.RESERVE_IDS)
        self._sql_spawned = self.sql(sql_enqueue.ENQUEUE_SPAWNED)
        self._sql_settle_new = self.sql(sql_changes.SETTLE_NEW)
        self._sql_finished_extras = self.sql(sql_changes.FINISHED_EXTRAS)
        self._sql_callbacks_done = self.sql(sql_changes.CALLBACKS_DONE)
        self._sql_states = self.sql(
            "SELECT id, has_children, status FROM {{schema}}.jobs WHERE id = ANY($1::bigint[])"
        )

    def _enqueue_sql(
        self, *, host: bool, keys: bool, plain: bool = False, one: bool = False
    ) -> str:
        conflict = sql_enqueue.CONFLICT
        if plain:
            statement = sql_enqueue.ENQUEUE_ONE if one else sql_enqueue.ENQUEUE_PLAIN
        else:
            statement = sql_enqueue.ENQUEUE.replace("{{on_conflict}}", conflict if keys else "")
            statement += sql_enqueue.ENQUEUE_KEYS if keys else sql_enqueue.ENQUEUE_NO_KEYS
        fence = "true" if host else "(SELECT {{schema}}.events_fence())"
        return self.sql(statement.replace("{{fence}}", fence))

    async def _warm_up(self) -> None:
        """Prepare the hot statements on a first connection (plans, type lookups), so that
        the first batches do not pay for it. They run on empty input in a transaction that
        is rolled back: nothing is written, nobody is notified.
        """
        empty: list[Any] = []
        try:
            async with self.pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await conn.fetch(self._sql_enqueue_plain[False, False], "", "", 0, "", 1, None)
                    await conn.fetch(self._sql_enqueue[False, False], *[empty] * 19)
                    await conn.fetch(self._sql_claim, "", 1.0, "", empty, None, 0)
                    await conn.fetch(self._sql_finish, *[empty] * 18)
                    await conn.fetch(self._sql_finish_succeeded, empty, "", "")
                finally:
                    await transaction.rollback()
        except DB_ERRORS as exc:  # e.g. create_schema=False before the schema exists
            logger.debug("warming up the statements failed: %s", describe_error(exc))

    # -- producers --------------------------------------------------------------------

    async def enqueue(
        self, jobs_: Sequence[NewJob], *, connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        if not jobs_:
            return []
        host = connection is not None
        plain = args.plain_args(jobs_)
        if plain is not None:
            one = len(jobs_) == 1  # its input is the joined text of one
            statement = self._sql_enqueue_plain[host, one]

            async def insert_plain(conn: asyncpg.Connection) -> list[Enqueued]:
                inserted = await conn.fetchval(statement, *plain)  # the id, or their array
                if one:
                    return [Enqueued(inserted, True)]
                return [Enqueued(i, True) for i in inserted]

            return await self._insert(connection, insert_plain)
        arguments = args.enqueue_args(jobs_)
        keys = any(j.unique_key is not None for j in jobs_)
        statement = self._sql_enqueue[host, keys]
        linked = any(j.depends_on for j in jobs_)
        limited = any(j.limits for j in jobs_)
        # A resubmission's link and a tracking job's lease are a second statement (as
        # are keys, limits and parents): in the same transaction, or a worker could
        # claim the job before they are written.
        alone = _common.one_statement(jobs_)

        async def insert(conn: asyncpg.Connection) -> list[Enqueued]:
            rows = await conn.fetch(statement, *arguments)
            result = args.pair(jobs_, rows, keys)
            if any(r is None for r in result):
                # A key taken by a transaction that committed after this statement's
                # snapshot: read it with a fresh one.
                missing = _common.missing_keys(jobs_, result)
                found = await conn.fetch(self._sql_find_keys, missing)
                result = args.pair(jobs_, rows, keys, {r[0]: r[1] for r in found})
            done = _common.complete(result)
            if limited:
                await self._add_keys(conn, [s for j in jobs_ for s in j.limits])
            if linked:
                await link_new(PostgresDependencies(self, conn), jobs_, done)
            settle = _common.new_to_settle(jobs_, done)
            if settle:
                await conn.fetch(self._sql_settle_new, *args.settle_args(settle))
            replace = _common.repeats_to_settle(jobs_, done)
            if replace:
                updated = await conn.fetch(self._sql_replace, *args.replace_args(replace))
                done = _common.mark_replaced(done, [r[0] for r in updated])
            return done

        async def insert_settled(conn: asyncpg.Connection) -> list[Enqueued]:
            if alone:
                return await insert(conn)
            # A rejected repeat, or a parent that does not exist, takes the batch back.
            async with conn.transaction():
                return await insert(conn)

        return await self._insert(connection, insert_settled)

    async def _insert(
        self,
        connection: AsyncConnection | None,
        work: Callable[[asyncpg.Connection], Awaitable[list[Enqueued]]],
    ) -> list[Enqueued]:
        """Run an enqueue's `work` in the host's transaction, or on its own."""
        if connection is not None:
            return await self._in_host_transaction(connection, work)
        enqueued = await self.run("enqueue", work)
        self.written([JobStatus.QUEUED])
        return enqueued

    async def _in_host_transaction(
        self,
        connection: AsyncConnection,
        work: Callable[[asyncpg.Connection], Awaitable[list[Enqueued]]],
    ) -> list[Enqueued]:
        """Run `work` on the asyncpg connection under the host's SQLAlchemy connection,
        inside the host's transaction (whose own steps become savepoints).
        """
        try:
            # SQLAlchemy begins the database transaction with its first statement:
            # make sure it has begun, or the insert would commit on its own.
            await connection.exec_driver_sql("SELECT 1")
            raw = await connection.get_raw_connection()
            return await work(raw.driver_connection)
        except DBAPIError as exc:
            raise StoreError(f"PostgreSQL enqueue failed: {exc.orig}") from exc
        except DB_ERRORS as exc:
            raise StoreError(f"PostgreSQL enqueue failed: {describe_error(exc)}") from exc

    async def reserve_ids(self, count: int) -> list[int]:
        if count <= 0:
            return []
        rows = await self.fetch("id reservation", self._sql_reserve, count, idempotent=True)
        return [r[0] for r in rows]

    # -- workers ----------------------------------------------------------------------

    async def claim_batch(self, request: ClaimRequest) -> list[ClaimedJob]:
        if request.limited:
            return await self._claim_limited(request)
        token = request.token
        rows = await self.fetch(
            "claim",
            self._sql_claim_isolated if request.isolated else self._sql_claim,
            token,
            request.lease,
            request.worker_id,
            list(request.types),
            None if request.queues is None else list(request.queues),
            request.limit,
        )
        if rows:
            self.written()
        return [
            ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], token, r[6], r[7], r[8], r[9], r[10])
            for r in rows
        ]

    async def mark_started(self, leases: Sequence[tuple[int, str]]) -> set[int]:
        if not leases:
            return set()
        rows = await self.fetch(
            "start mark",
            self._sql_mark_started,
            [i for i, _ in leases],
            [t for _, t in leases],
            idempotent=True,
        )
        held = {r[0] for r in rows}
        return {job_id for job_id, _ in leases if job_id not in held}

    async def next_ready(
        self, queues: Sequence[str] | None, types: Sequence[str]
    ) -> datetime | None:
        # The wait is measured on the database clock and handed back on this machine's.
        rows = await self.read(
            self._sql_next_ready, list(types), None if queues is None else list(queues)
        )
        delay = rows[0][0]
        return None if delay is None else datetime.now(UTC) + timedelta(seconds=delay)

    async def finish(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()
    ) -> list[int]:
        if not outcomes and not events:
            return []
        woken: list[JobStatus] = []  # the statuses that resolved or follow-up jobs took
        kind = _batch_kind(outcomes)
        if kind is _Batch.WRITES_MORE:
            rejected, woken = await self._finish_in_transaction(outcomes, events)
        elif not events and kind is _Batch.SUCCESSES:
            rows = await self.fetch(
                "finish",
                self._sql_finish_succeeded,
                [o.job_id for o in outcomes],
                args.joined([o.lease_token for o in outcomes]),
                args.joined([o.output for o in outcomes if o.output is not None]),
            )
            rejected = [r[0] for r in rows if not r[1]]
            woken = await self._resolve_late([r[0] for r in rows if r[1]])
        else:
            rows = await self.fetch("finish", self._sql_finish, *args.finish_args(outcomes, events))
            rejected = [r[0] for r in rows if not r[1]]
            woken = await self._resolve_late([r[0] for r in rows if r[1]])
        self.written([o.status for o in outcomes] + woken)
        return rejected

    async def _resolve_late(self, parents: list[int]) -> list[JobStatus]:
        """Resolve the dependents of finished jobs whose claim did not know of them (they
        were enqueued while the job ran), right after the finish committed; if this
        process dies first, the promoter settles them.
        """
        if not parents:
            return []

        async def write(conn: asyncpg.Connection) -> list[JobStatus]:
            async with conn.transaction():
                final = final_parents(await conn.fetch(self._sql_states, parents))
                if not final:
                    return []
                return await resolve(PostgresDependencies(self, conn), final)

        return await self.run("dependency resolution", write)

    async def _finish_in_transaction(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent]
    ) -> tuple[list[int], list[JobStatus]]:
        """Finish; insert the follow-up jobs of the successes; resolve the jobs that
        wait for the finished ones; all in one transaction.
        """

        async def write(conn: asyncpg.Connection) -> tuple[list[int], list[JobStatus]]:
            woken: list[JobStatus] = []
            async with conn.transaction():
                rows = await conn.fetch(self._sql_finish, *args.finish_args(outcomes, events))
                rejected = {r[0] for r in rows if not r[1]}
                has_children = {r[0] for r in rows if r[1]}
                spawned = [
                    j
                    for o in outcomes
                    if o.status is JobStatus.SUCCEEDED and o.job_id not in rejected
                    for j in o.spawned
                ]
                if spawned:
                    woken.append(JobStatus.QUEUED)
                    await conn.fetch(self._sql_spawned, *args.spawned_args(spawned))
                    if any(j.limits for j in spawned):
                        await self._add_keys(conn, [s for j in spawned for s in j.limits])
                extras = _common.finished_extras(
                    outcomes, (o.job_id for o in outcomes if o.job_id not in rejected)
                )
                if extras:
                    await conn.fetch(self._sql_finished_extras, *args.extras_args(extras))
                throttles = [
                    (o.job_id, o.throttle, o.throttle_key)
                    for o in outcomes
                    if o.throttle is not None and o.job_id not in rejected
                ]
                if throttles:
                    await self._throttle(conn, throttles)
                flagged = [o.job_id for o in outcomes if o.has_children or o.job_id in has_children]
                if flagged:
                    states = await conn.fetch(self._sql_states, flagged)
                    parents = final_parents(states)
                    if parents:
                        woken.extend(await resolve(PostgresDependencies(self, conn), parents))
                return [r[0] for r in rows if not r[1]], woken

        return await self.run("finish", write)

    async def callbacks_done(self, ids: Sequence[int]) -> None:
        if ids:
            await self.fetch("callbacks done", self._sql_callbacks_done, list(ids), idempotent=True)

    async def heartbeat(
        self, leases: Sequence[tuple[int, str]], lease: float, *, started: Sequence[int] = ()
    ) -> tuple[set[int], set[int]]:
        if not leases:
            return set(), set()
        rows = await self.fetch(
            "heartbeat",
            self._sql_heartbeat,
            [i for i, _ in leases],
            [t for _, t in leases],
            float(lease),
            list(started),
            idempotent=True,
        )
        held = {r[0] for r in rows}
        asked = {r[0] for r in rows if r[1]}
        return {job_id for job_id, _ in leases if job_id not in held}, asked

    async def cancel_requested(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        rows = await self.read(self._sql_cancel_requested, list(ids))
        return {r[0] for r in rows}

    async def release(self, leases: Sequence[tuple[int, str]], reason: str) -> None:
        if not leases:
            return

        async def release(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                rows = await conn.fetch(
                    self._sql_release, [i for i, _ in leases], [t for _, t in leases], reason
                )
                parents = final_parents(rows)
                if parents:
                    await resolve(PostgresDependencies(self, conn), parents)

        await self.run("release", release, idempotent=True)
        self.written([JobStatus.QUEUED])


class _Batch(enum.Enum):
    """What a batch of outcomes needs written (`_batch_kind`)."""

    WRITES_MORE = "follow-up jobs, dependents, throttles, usage, callbacks or an input"
    SUCCESSES = "plain successes: the short statement"
    GENERAL = "the general statement"


def _batch_kind(outcomes: Sequence[Outcome]) -> _Batch:
    """How to finish `outcomes`, in one loop over them (once per job per batch: no
    generator, whose every step is a call).
    """
    successes = True
    for o in outcomes:
        if (
            o.spawned
            or o.has_children
            or o.throttle is not None
            or o.usage
            or o.callback
            or o.input is not None
        ):
            return _Batch.WRITES_MORE
        if successes and (
            o.status is not JobStatus.SUCCEEDED
            or o.message is not None
            or o.error is not None
            or o.output is None
        ):
            successes = False
    return _Batch.SUCCESSES if successes else _Batch.GENERAL
