"""The SQLite store's producer and work-queue roles: enqueue, claim, renew, finish."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...models import JobStatus
from .. import _common, audit
from ..dependencies import final_parents, link_new, resolve
from ..records import ClaimedJob, ClaimRequest, Enqueued, NewEvent, NewJob, Outcome
from . import sql
from .dependencies import SQLiteDependencies
from .limits import SQLiteLimits, claimed_job

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .driver import Executes


def _leases(leases: Sequence[tuple[int, str]]) -> str:
    return json.dumps([[i, t] for i, t in leases])


class SQLiteQueue(SQLiteLimits):
    """Enqueue, claim, heartbeat, finish and release on SQLite."""

    async def enqueue(
        self, jobs_: Sequence[NewJob], *, connection: AsyncConnection | None = None
    ) -> list[Enqueued]:
        if not jobs_:
            return []
        payload = _rows(jobs_)
        if connection is None and _common.one_statement(jobs_):
            params = {"rows": payload, "now": time.time()}
            rows = await self._statement(sql.INSERT, params, write=True)
            self.written([JobStatus.QUEUED])
            return _common.complete(_common.pair_enqueued(jobs_, [(r[0], r[1]) for r in rows]))

        async def insert(conn: Executes) -> list[Enqueued]:
            now = time.time()
            rows = (await conn.execute(sql.INSERT, {"rows": payload, "now": now})).all()
            result = _common.pair_enqueued(jobs_, [(r[0], r[1]) for r in rows])
            missing = _common.missing_keys(jobs_, result)
            if missing:
                found = await conn.execute(sql.HOLDERS, {"keys": json.dumps(missing)})
                holders = {row[0]: row[1] for row in found}
                result = _common.pair_enqueued(jobs_, [(r[0], r[1]) for r in rows], holders)
            done = _common.complete(result)
            if any(j.limits for j in jobs_):
                await self._add_keys(conn, [s for j in jobs_ for s in j.limits])
            if any(j.depends_on for j in jobs_):
                await link_new(SQLiteDependencies(conn, now), jobs_, done)
            settle = _common.new_to_settle(jobs_, done)
            if settle:
                await conn.execute(sql.SETTLE_NEW, {"rows": json.dumps(settle), "now": now})
            replace = _common.repeats_to_settle(jobs_, done)
            if not replace:
                return done
            rows_ = [
                [
                    holder,
                    j.input,
                    None if j.run_at is None else j.run_at.timestamp(),
                    j.type,
                    [s.key for s in j.limits] if j.limits else None,
                ]
                for holder, j in replace
            ]
            updated = [
                r[0]
                for r in await conn.execute(sql.REPLACE, {"rows": json.dumps(rows_), "now": now})
            ]
            if updated:
                params = {"ids": json.dumps(updated), "message": _common.REPLACED, "now": now}
                await conn.execute(sql.ACTION_EVENTS, params)
            return _common.mark_replaced(done, updated)

        if connection is not None:
            return await insert(connection)
        result = await self._transaction(insert)
        self.written([JobStatus.QUEUED])
        return result

    async def reserve_ids(self, count: int) -> list[int]:
        if count <= 0:
            return []

        async def write(conn: AsyncConnection) -> int:
            row = (await conn.execute(sql.RESERVE_IDS, {"count": count})).first()
            if row is None:
                row = (await conn.execute(sql.FIRST_RESERVATION, {"count": count})).first()
            assert row is not None
            return int(row[0])

        last = await self._write(write)
        return list(range(last - count + 1, last + 1))

    async def claim_batch(self, request: ClaimRequest) -> list[ClaimedJob]:
        if request.limited:
            return await self._claim_limited(request)
        token = request.token
        now = time.time()
        params = {
            "token": token,
            "now": now,
            "lease": request.lease,
            "worker": request.worker_id,
            "types": json.dumps(request.types),
            "queues": None if request.queues is None else json.dumps(request.queues),
            "limit": request.limit,
        }
        statement = sql.CLAIM_ISOLATED if request.isolated else sql.CLAIM

        rows = await self._statement(statement, params, write=True)
        # SQLite returns the rows in no particular order; run the best first.
        rows.sort(key=lambda r: (-r[7], r[8], r[0]))
        claimed = [claimed_job(r, token, now) for r in rows]
        if claimed:
            self.written()
        return claimed

    async def mark_started(self, leases: Sequence[tuple[int, str]]) -> set[int]:
        if not leases:
            return set()
        params = {"leases": _leases(leases)}
        held = {r[0] for r in await self._statement(sql.MARK_STARTED, params, write=True)}
        return {job_id for job_id, _ in leases if job_id not in held}

    async def next_ready(
        self, queues: Sequence[str] | None, types: Sequence[str]
    ) -> datetime | None:
        params = {
            "types": json.dumps(list(types)),
            "queues": None if queues is None else json.dumps(list(queues)),
        }

        rows = await self._statement(sql.NEXT_READY, params, write=False)
        ts = rows[0][0] if rows else None
        return None if ts is None else datetime.fromtimestamp(float(ts), UTC)

    async def finish(
        self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()
    ) -> list[int]:
        progress = [[i, p, m] for i, (p, m) in _common.last_progress(events).items()]
        event_rows = json.dumps(
            [
                [
                    e.job_id,
                    e.job_type,
                    e.kind,
                    e.attempt,
                    e.progress,
                    e.message,
                    _common.data_text(e),
                    None,
                ]
                for e in events
            ]
        )
        outcome_rows = json.dumps(
            [
                [
                    o.job_id,
                    o.lease_token,
                    o.status.value,
                    o.output,
                    _common.error_text(o),
                    o.retry_in,
                    o.message,
                    1 if o.give_back else 0,
                ]
                for o in outcomes
            ]
        )

        async def write(conn: Executes) -> list[int]:
            now = time.time()
            if events:
                await conn.execute(sql.EVENTS, {"events": event_rows, "now": now})
            if progress:
                await conn.execute(sql.PROGRESS, {"reports": json.dumps(progress), "now": now})
            if not outcomes:
                return []
            written = (await conn.execute(sql.FINISH, {"outcomes": outcome_rows, "now": now})).all()
            done = {r[0] for r in written}
            throttles = [
                [o.job_id, o.throttle, o.throttle_key]
                for o in outcomes
                if o.throttle is not None and o.job_id in done
            ]
            if throttles:
                await self._throttle(conn, throttles, now)
            extras = _common.finished_extras(outcomes, done)
            if extras:
                await conn.execute(sql.FINISHED_EXTRAS, {"rows": json.dumps(extras)})
            parents = final_parents(written)
            if parents:
                woken.extend(await resolve(SQLiteDependencies(conn, now), parents))
            rejected = [o for o in outcomes if o.job_id not in done]
            spawned = [
                j
                for o in outcomes
                if o.spawned and o.job_id in done and o.status is JobStatus.SUCCEEDED
                for j in o.spawned
            ]
            if spawned:
                woken.append(JobStatus.QUEUED)
                await conn.execute(sql.INSERT, {"rows": _rows(spawned), "now": now})
                if any(j.limits for j in spawned):
                    await self._add_keys(conn, [s for j in spawned for s in j.limits])
            if rejected:
                await conn.execute(
                    sql.EVENTS,
                    {"events": json.dumps([_rejection(o) for o in rejected]), "now": now},
                )
            return [o.job_id for o in rejected]

        woken: list[JobStatus] = []  # the statuses that resolved or follow-up jobs took
        rejected = await self._transaction(write)
        self.written([*(o.status for o in outcomes), *woken])
        return rejected

    async def callbacks_done(self, ids: Sequence[int]) -> None:
        if not ids:
            return

        await self._statement(sql.CALLBACKS_DONE, {"ids": json.dumps(list(ids))}, write=True)

    async def heartbeat(
        self, leases: Sequence[tuple[int, str]], lease: float, *, started: Sequence[int] = ()
    ) -> tuple[set[int], set[int]]:
        if not leases:
            return set(), set()
        params = {
            "leases": _leases(leases),
            "lease": lease,
            "now": time.time(),
            "started": json.dumps(list(started)),
        }

        rows = await self._statement(sql.HEARTBEAT, params, write=True)
        held = {r[0] for r in rows}
        asked = {r[0] for r in rows if r[1]}
        return {job_id for job_id, _ in leases if job_id not in held}, asked

    async def cancel_requested(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()

        params = {"ids": json.dumps(list(ids))}
        return {r[0] for r in await self._statement(sql.CANCEL_REQUESTED, params, write=False)}

    async def release(self, leases: Sequence[tuple[int, str]], reason: str) -> None:
        if not leases:
            return
        now = time.time()
        params = {"leases": _leases(leases), "reason": reason, "now": now}

        async def write(conn: Executes) -> None:
            parents = final_parents((await conn.execute(sql.RELEASE, params)).all())
            if parents:
                await resolve(SQLiteDependencies(conn, now), parents)

        await self._transaction(write)
        self.written([JobStatus.QUEUED])


def _rows(jobs_: Sequence[NewJob]) -> str:
    rows = [
        [
            j.type,
            j.queue,
            j.priority,
            j.input,
            j.max_attempts,
            j.unique_key,
            list(j.tags),
            j.metadata,
            j.owner,
            j.parent_id,
            None if j.run_at is None else j.run_at.timestamp(),
            j.id,
            j.unique_keep,
            "waiting" if j.depends_on else "queued",
            len(j.depends_on),
            j.input_from,
            [s.key for s in j.limits] if j.limits else None,
            j.version,
        ]
        for j in jobs_
    ]
    # The trace context goes in only when there is one (tracing on): `->> 18` of a
    # shorter row is NULL.
    for row, j in zip(rows, jobs_, strict=True):
        if j.trace is not None:
            row.append(j.trace)
    return json.dumps(rows)


def _rejection(outcome: Outcome) -> list[Any]:
    message = audit.late_result(outcome.status.value)
    return [outcome.job_id, None, "log", 0, None, message, json.dumps(audit.LATE_RESULT_DATA), None]
