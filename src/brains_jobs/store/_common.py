"""What every backend does the same way in Python around its own SQL: pairing inserted
rows with the jobs asked for, and laying out batches as rows.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..exceptions import DuplicateJob, StoreError
from ..models import JobStatus
from ..payloads import dumps
from .records import Change, Enqueued

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .records import NewEvent, NewJob, Outcome


class EngineHolder:
    """A store's SQLAlchemy engine: the queries built with Core, and the host
    application's own connections, run on it.
    """

    _engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine on the store's database (open the store first)."""
        if self._engine is None:
            raise StoreError("the store is not open")
        return self._engine


def pair_enqueued(
    wanted: Sequence[NewJob],
    inserted: Iterable[tuple[int, str | None]],
    holders: dict[str, int] | None = None,
) -> list[Enqueued | None]:
    """Pair inserted rows with the jobs asked for, in input order.

    Inserted rows get ascending ids in input order, so they pair with the jobs that were
    inserted: every job without a unique key, and the first of each key not already
    taken (`created`). A repeat gets the id holding its key from `holders`, or None when
    that id is not known yet (the caller looks it up and pairs again).
    """
    rows = sorted(inserted)
    keys_inserted = {key for _, key in rows if key is not None}
    ids = iter(i for i, _ in rows)
    known = dict(holders or {})
    result: list[Enqueued | None] = []
    for job in wanted:
        key = job.unique_key
        if key is None:
            result.append(Enqueued(next(ids), created=True))
        elif key in keys_inserted:
            keys_inserted.discard(key)
            known[key] = next(ids)
            result.append(Enqueued(known[key], created=True))
        elif key in known:
            result.append(Enqueued(known[key], created=False))
        else:
            result.append(None)
    return result


def missing_keys(wanted: Sequence[NewJob], result: Sequence[Enqueued | None]) -> list[str]:
    """The unique keys whose holder is not known yet."""
    return [j.unique_key for j, r in zip(wanted, result, strict=True) if r is None and j.unique_key]


def complete(result: Sequence[Enqueued | None]) -> list[Enqueued]:
    """Every pairing, or `StoreError` when a key's holder vanished in between."""
    if any(r is None for r in result):
        raise StoreError("a unique key was taken by a job that no longer exists")
    return [r for r in result if r is not None]


def repeats_to_settle(
    wanted: Sequence[NewJob], result: Sequence[Enqueued]
) -> list[tuple[int, NewJob]]:
    """What the repeats of held unique keys ask for, decided once for every store: a
    `reject` raises `DuplicateJob` (the caller's transaction rolls back); a `replace`
    comes back as (holder id, the repeat) for the store to apply to a still-waiting or
    queued holder of the same type; `return_existing` needs nothing.
    """
    replace: list[tuple[int, NewJob]] = []
    for job, row in zip(wanted, result, strict=True):
        if row.created or job.unique_key is None:
            continue
        if job.on_conflict == "reject":
            raise DuplicateJob(job.unique_key, row.id)
        if job.on_conflict == "replace":
            replace.append((row.id, job))
    return replace


def mark_replaced(result: Sequence[Enqueued], replaced: Iterable[int]) -> list[Enqueued]:
    """`result` with the holders that took a repeat's input marked `replaced`."""
    done = set(replaced)
    return [
        Enqueued(r.id, created=False, replaced=True) if not r.created and r.id in done else r
        for r in result
    ]


REPLACED = "input and run time replaced by a repeat of its unique key"


def last_progress(events: Sequence[NewEvent]) -> dict[int, tuple[float | None, str | None]]:
    """The last progress report of each job among `events` (the job's current progress)."""
    progress: dict[int, tuple[float | None, str | None]] = {}
    for e in events:
        if e.kind == "progress":
            progress[e.job_id] = (e.progress, e.message)
    return progress


def error_text(outcome: Outcome) -> str | None:
    """An outcome's error as JSON text."""
    return None if outcome.error is None else json.dumps(outcome.error)


def data_text(event: NewEvent) -> str | None:
    """An event's data as JSON text."""
    return None if event.data is None else dumps(event.data)


def status_unchanged(change: Change) -> bool:
    """True when `change` leaves the status as it is (it then writes an `action` event)."""
    return change.status in change.expect


def change_row(change: Change) -> dict[str, Any]:
    """A `Change` as a flat row (None: leave the column as it is)."""
    return {
        "id": change.job_id,
        "expect": sorted(s.value for s in change.expect),
        "status": change.status.value,
        "token": change.lease_token,
        "message": change.message,
        "actor": change.actor,
        "error": None if change.error is None else json.dumps(change.error),
        "run_in": change.run_in,
        "output": change.output,
        "attempts_delta": change.attempts_delta,
        "max_attempts": change.max_attempts,
        "crashes_delta": change.crashes_delta,
        "mark_start": change.mark_start,
        "request_cancel": change.request_cancel,
        "queue": change.queue,
        "priority": change.priority,
        "input": change.input,
        "version": change.version,
        "progress": change.progress,
        "lease_for": change.lease_for,
        "track_ttl": change.track_ttl,
        "usage": change.usage,
        "new_token": change.new_token,
        "callback": change.callback,
        "final": change.status.is_final,
        "unchanged": status_unchanged(change),
        "action": status_unchanged(change)
        and (change.actor is not None or bool(change.message) or change.progress is not None),
    }


def one_statement(jobs_: Sequence[NewJob]) -> bool:
    """True when inserting `jobs_` takes one statement: no unique keys (whose holders
    may need reading), limit keys, parents, resubmissions or tracking jobs.
    """
    return not any(
        j.unique_key is not None
        or j.limits
        or j.depends_on
        or j.original_id is not None
        or j.track_ttl is not None
        for j in jobs_
    )


def new_to_settle(jobs_: Sequence[NewJob], done: Sequence[Enqueued]) -> list[list[Any]]:
    """Rows (id, original id, tracking ttl, lease token) for the inserted jobs that
    resubmit another or are tracking jobs (`SETTLE_NEW` of each backend).
    """
    return [
        [e.id, j.original_id, j.track_ttl, uuid.uuid4().hex if j.track_ttl else None]
        for j, e in zip(jobs_, done, strict=True)
        if e.created and (j.original_id is not None or j.track_ttl is not None)
    ]


def finished_extras(outcomes: Sequence[Outcome], written: Iterable[int]) -> list[list[Any]]:
    """Rows (id, usage, callback due, upgraded input, its version) for the written
    outcomes that add usage, wait for a lifecycle callback or upgraded their job's input
    (`FINISHED_EXTRAS` of each backend).
    """
    done = set(written)
    return [
        [o.job_id, o.usage, o.callback, o.input, o.version]
        for o in outcomes
        if (o.usage is not None or o.callback or o.input is not None) and o.job_id in done
    ]


def statuses_of(changes: Sequence[Change], applied: Iterable[int]) -> list[JobStatus]:
    """The new statuses of the applied changes (which signals to fire)."""
    done = set(applied)
    return [c.status for c in changes if c.job_id in done]
