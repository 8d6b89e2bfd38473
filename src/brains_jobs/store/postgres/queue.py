"""The PostgreSQL store's producer and work-queue roles: enqueue, claim, renew, finish."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ...exceptions import StoreError
from ...models import JobStatus
from .. import _common
from ..dependencies import final_parents, link_new, resolve
from ..records import ClaimedJob, ClaimRequest, Enqueued, NewEvent, NewJob, Outcome
from . import sql
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
            host: self._enqueue_sql(host=host, keys=False, plain=True) for host in (False, True)
        }
        self._sql_find_keys = self.sql(sql.HOLDERS)
        self._sql_replace = self.sql(sql.REPLACE)
        self._sql_claim = self.sql(sql.CLAIM)
        self._sql_claim_isolated = self.sql(sql.CLAIM_ISOLATED)
        self._sql_next_ready = self.sql(sql.NEXT_READY)
        self._sql_finish = self.sql(sql.FINISH)
        self._sql_finish_succeeded = self.sql(sql.FINISH_SUCCEEDED)
        self._sql_heartbeat = self.sql(sql.HEARTBEAT)
        self._sql_mark_started = self.sql(sql.MARK_STARTED)
        self._sql_cancel_requested = self.sql(sql.CANCEL_REQUESTED)
        self._sql_release = self.sql(sql.RELEASE)
        self._sql_reserve = self.sql(sql.RESERVE_IDS)
        self._sql_spawned = self.sql(sql.ENQUEUE_SPAWNED)
        self._sql_states = self.sql(
            "SELECT id, has_children, status FROM {{schema}}.jobs WHERE id = ANY($1::bigint[])"
        )

    def _enqueue_sql(self, *, host: bool, keys: bool, plain: bool = False) -> str:
        conflict = sql.CONFLICT
        if plain:
            statement = sql.ENQUEUE_PLAIN
        else:
            statement = sql.ENQUEUE.replace("{{on_conflict}}", conflict if keys else "")
            statement += sql.ENQUEUE_KEYS if keys else sql.ENQUEUE_NO_KEYS
        fence = "true" if host else "(SELECT {{schema}}.events_fence())"
        statement = self.sql(statement.replace("{{fence}}", fence))
        return _named(statement) if host else statement

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
                    await conn.fetch(self._sql_enqueue_plain[False], "", "", 0, empty, 1)
                    await conn.fetch(self._sql_enqueue[False, False], *[empty] * 17)
                    await conn.fetch(self._sql_claim, "", 1.0, "", empty, None, 0)
                    await conn.fetch(self._sql_finish, *[empty] * 18)
                    await conn.fetch(self._sql_finish_succeeded, empty, empty, empty)
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
        args: Sequence[Any] | None = _plain_args(jobs_)
        if args is not None:
            keys = False
            statement = self._sql_enqueue_plain[host]
        else:
            args = _enqueue_args(jobs_)
            keys = any(j.unique_key is not None for j in jobs_)
            statement = self._sql_enqueue[host, keys]
        if connection is not None:
            try:
                params = {f"p{i}": v for i, v in enumerate(args, 1)}
                rows = (await connection.execute(text(statement), params)).all()
                result = _pair(jobs_, rows, keys)
                if any(r is None for r in result):
                    found = await connection.execute(
                        text(_named(self._sql_find_keys)),
                        {"p1": _common.missing_keys(jobs_, result)},
                    )
                    result = _pair(jobs_, rows, keys, dict(found.tuples().all()))
                done = _common.complete(result)
                replace = _common.repeats_to_settle(jobs_, done)
                if replace:
                    updated = await connection.execute(
                        text(_named(self._sql_replace)),
                        {f"p{i}": v for i, v in enumerate(_replace_args(replace), 1)},
                    )
                    done = _common.mark_replaced(done, [r[0] for r in updated])
            except DBAPIError as exc:
                raise StoreError(f"PostgreSQL enqueue failed: {exc.orig}") from exc
            return done

        async def insert(conn: asyncpg.Connection) -> list[Enqueued]:
            rows = await conn.fetch(statement, *args)
            result = _pair(jobs_, rows, keys)
            if any(r is None for r in result):
                # A key taken by a transaction that committed after this statement's
                # snapshot: read it with a fresh one.
                missing = _common.missing_keys(jobs_, result)
                found = await conn.fetch(self._sql_find_keys, missing)
                result = _pair(jobs_, rows, keys, {r[0]: r[1] for r in found})
            done = _common.complete(result)
            if limited:
                await self._add_keys(conn, [s for j in jobs_ for s in j.limits])
            if linked:
                await link_new(PostgresDependencies(self, conn), jobs_, done)
            replace = _common.repeats_to_settle(jobs_, done)
            if replace:
                updated = await conn.fetch(self._sql_replace, *_replace_args(replace))
                done = _common.mark_replaced(done, [r[0] for r in updated])
            return done

        linked = any(j.depends_on for j in jobs_)
        limited = any(j.limits for j in jobs_)

        async def insert_settled(conn: asyncpg.Connection) -> list[Enqueued]:
            if not keys and not linked and not limited:
                return await insert(conn)
            # A rejected repeat, or a parent that does not exist, takes the batch back.
            async with conn.transaction():
                return await insert(conn)

        enqueued = await self.run("enqueue", insert_settled)
        self.written([JobStatus.QUEUED])
        return enqueued

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
        return [ClaimedJob(r[0], r[1], r[2], r[3], r[4], r[5], token, r[6], r[7]) for r in rows]

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
        if any(o.spawned or o.has_children or o.throttle is not None for o in outcomes):
            rejected = await self._finish_in_transaction(outcomes, events)
        elif not events and all(
            o.status is JobStatus.SUCCEEDED and o.message is None and o.error is None
            for o in outcomes
        ):
            rows = await self.fetch(
                "finish",
                self._sql_finish_succeeded,
                [o.job_id for o in outcomes],
                [o.lease_token for o in outcomes],
                [o.output for o in outcomes],
            )
            rejected = [r[0] for r in rows]
        else:
            rows = await self.fetch("finish", self._sql_finish, *_finish_args(outcomes, events))
            rejected = [r[0] for r in rows]
        self.written([o.status for o in outcomes])
        return rejected

    async def _finish_in_transaction(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent]
    ) -> list[int]:
        """Finish; insert the follow-up jobs of the successes; resolve the jobs that
        wait for the finished ones; all in one transaction.
        """

        async def write(conn: asyncpg.Connection) -> list[int]:
            async with conn.transaction():
                rows = await conn.fetch(self._sql_finish, *_finish_args(outcomes, events))
                rejected = {r[0] for r in rows}
                spawned = [
                    j
                    for o in outcomes
                    if o.status is JobStatus.SUCCEEDED and o.job_id not in rejected
                    for j in o.spawned
                ]
                if spawned:
                    await conn.fetch(
                        self._sql_spawned, *_enqueue_args(spawned)[:12], [j.id for j in spawned]
                    )
                throttles = [
                    (o.job_id, o.throttle, o.throttle_key)
                    for o in outcomes
                    if o.throttle is not None and o.job_id not in rejected
                ]
                if throttles:
                    await self._throttle(conn, throttles)
                flagged = [o.job_id for o in outcomes if o.has_children]
                if flagged:
                    states = await conn.fetch(self._sql_states, flagged)
                    parents = final_parents(states)
                    if parents:
                        await resolve(PostgresDependencies(self, conn), parents)
                return [r[0] for r in rows]

        return await self.run("finish", write)

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


def _named(statement: str) -> str:
    """`$1` placeholders as SQLAlchemy `:p1` ones (the statements use CAST, not `::`)."""
    return re.sub(r"\$(\d+)", r":p\1", statement)


def _pair(
    wanted: Sequence[NewJob],
    rows: Sequence[Any],
    keys: bool,
    found: dict[str, int] | None = None,
) -> list[Enqueued | None]:
    """Pair the enqueue statement's rows (inserted, and with keys the holders it saw)."""
    if not keys:
        return [Enqueued(r[0], created=True) for r in rows]
    holders = {r[1]: r[0] for r in rows if not r[2]}
    holders.update(found or {})
    return _common.pair_enqueued(wanted, [(r[0], r[1]) for r in rows if r[2]], holders)


def _replace_args(replace: Sequence[tuple[int, NewJob]]) -> list[Any]:
    return [
        [holder for holder, _ in replace],
        [j.input for _, j in replace],
        [j.run_at for _, j in replace],
        _common.REPLACED,
    ]


def _enqueue_args(jobs_: Sequence[NewJob]) -> list[list[Any]]:
    return [
        [j.type for j in jobs_],
        [j.queue for j in jobs_],
        [j.priority for j in jobs_],
        [j.input for j in jobs_],
        [j.max_attempts for j in jobs_],
        [j.unique_key for j in jobs_],
        [json.dumps(list(j.tags)) if j.tags else "[]" for j in jobs_],
        [json.dumps(j.metadata) if j.metadata else "{}" for j in jobs_],
        [j.owner for j in jobs_],
        [j.parent_id for j in jobs_],
        [j.run_at for j in jobs_],
        [j.unique_keep for j in jobs_],
        ["waiting" if j.depends_on else "queued" for j in jobs_],
        [len(j.depends_on) for j in jobs_],
        [j.input_from for j in jobs_],
        [j.id for j in jobs_],
        [json.dumps([s.key for s in j.limits]) if j.limits else None for j in jobs_],
    ]


def _plain_args(jobs_: Sequence[NewJob]) -> list[Any] | None:
    """The arguments of the plain statement, or None when the batch is not plain."""
    first = jobs_[0]
    kind = (first.type, first.queue, first.priority, first.max_attempts)
    for j in jobs_:
        if (
            (j.type, j.queue, j.priority, j.max_attempts) != kind
            or j.unique_key is not None
            or j.tags
            or j.metadata
            or j.owner is not None
            or j.parent_id is not None
            or j.run_at is not None
            or j.unique_keep
            or j.depends_on
            or j.input_from is not None
            or j.id is not None
            or j.limits
        ):
            return None
    return [first.type, first.queue, first.priority, [j.input for j in jobs_], first.max_attempts]


def _finish_args(outcomes: Sequence[Outcome], events: Sequence[NewEvent]) -> list[list[Any]]:
    # The last progress report of each job goes into the same UPDATE as its outcome:
    # a statement may not update one row twice.
    progress = _common.last_progress(events)
    ids: list[int] = []
    tokens: list[str | None] = []
    statuses: list[str | None] = []
    outputs: list[str | None] = []
    errors: list[str | None] = []
    retry_in: list[float | None] = []
    messages: list[str | None] = []
    has_progress: list[bool] = []
    give_back: list[bool] = []
    values: list[float | None] = []
    progress_messages: list[str | None] = []
    for o in outcomes:
        report = progress.pop(o.job_id, None)
        ids.append(o.job_id)
        tokens.append(o.lease_token)
        statuses.append(o.status.value)
        outputs.append(o.output)
        errors.append(_common.error_text(o))
        retry_in.append(float(o.retry_in))
        messages.append(o.message)
        has_progress.append(report is not None)
        values.append(report[0] if report else None)
        progress_messages.append(report[1] if report else None)
        give_back.append(o.give_back)
    for job_id, (value, message) in progress.items():
        ids.append(job_id)
        tokens.append(None)
        statuses.append(None)
        outputs.append(None)
        errors.append(None)
        retry_in.append(None)
        messages.append(None)
        has_progress.append(True)
        values.append(value)
        progress_messages.append(message)
        give_back.append(False)
    return [
        ids,
        tokens,
        statuses,
        outputs,
        errors,
        retry_in,
        messages,
        has_progress,
        values,
        progress_messages,
        [e.job_id for e in events],
        [e.job_type for e in events],
        [e.kind for e in events],
        [e.attempt for e in events],
        [e.progress for e in events],
        [e.message for e in events],
        [_common.data_text(e) for e in events],
        give_back,
    ]
