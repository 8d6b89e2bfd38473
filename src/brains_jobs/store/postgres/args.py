"""Laying out the PostgreSQL store's batches as the arrays its statements `unnest`, and
pairing the rows they return with what was asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...payloads import dumps
from .. import _common
from ..records import Enqueued, NewEvent, NewJob, NewJobBatch, Outcome


def pair(
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


def joined(texts: list[str]) -> str:
    """`texts` as one text for `string_to_array(text, E'\\x1f')`: for texts that never
    hold U+001F (lease tokens, JSON text, which escapes every control character).
    """
    return "\x1f".join(texts)


def replace_args(replace: Sequence[tuple[int, NewJob]]) -> list[Any]:
    return [
        [holder for holder, _ in replace],
        [j.input for _, j in replace],
        [j.run_at for _, j in replace],
        _common.REPLACED,
        [j.type for _, j in replace],
        [json.dumps([s.key for s in j.limits]) if j.limits else None for _, j in replace],
    ]


def enqueue_args(jobs_: Sequence[NewJob]) -> list[Any]:
    return [
        [j.type for j in jobs_],
        [j.queue for j in jobs_],
        [j.priority for j in jobs_],
        [j.input for j in jobs_],
        [j.max_attempts for j in jobs_],
        [j.unique_key for j in jobs_],
        [json.dumps(list(j.tags)) if j.tags else "[]" for j in jobs_],
        [dumps(j.metadata) if j.metadata else "{}" for j in jobs_],
        [j.owner for j in jobs_],
        [j.parent_id for j in jobs_],
        [j.run_at for j in jobs_],
        [j.unique_keep for j in jobs_],
        ["waiting" if j.depends_on else "queued" for j in jobs_],
        [len(j.depends_on) for j in jobs_],
        [j.input_from for j in jobs_],
        [j.id for j in jobs_],
        [json.dumps([s.key for s in j.limits]) if j.limits else None for j in jobs_],
        [j.version for j in jobs_],
        _traces(jobs_),
    ]


def _traces(jobs_: Sequence[NewJob]) -> list[str | None] | None:
    """The trace contexts of `jobs_`; None (no array to send) when none has one."""
    traces = [j.trace for j in jobs_]
    return traces if any(traces) else None


def plain_args(jobs_: Sequence[NewJob]) -> list[Any] | None:
    """The arguments of the plain statement, or None when the batch is not plain: every
    job of one type, queue, priority and attempts, with nothing else set but its input.
    An unread `NewJobBatch` is plain when its template is.
    """
    if type(jobs_) is NewJobBatch and jobs_.unread:  # no ABC check for a list
        first = jobs_.template
        if not _plain(first):
            return None
        inputs = jobs_.inputs
    else:
        first = jobs_[0]
        kind = (first.type, first.queue, first.priority, first.max_attempts, first.trace)
        for j in jobs_:
            if (j.type, j.queue, j.priority, j.max_attempts, j.trace) != kind or not _plain(j):
                return None
        inputs = [j.input for j in jobs_]
    return [
        first.type,
        first.queue,
        first.priority,
        joined(inputs),
        first.max_attempts,
        first.trace,
    ]


def _plain(j: NewJob) -> bool:
    """True for a job with nothing set but its type, queue, priority, attempts, input
    and trace context.
    """
    return not (
        j.unique_key is not None
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
        or j.version != 1
        or j.original_id is not None
        or j.track_ttl is not None
    )


def finish_args(outcomes: Sequence[Outcome], events: Sequence[NewEvent]) -> list[list[Any]]:
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


def spawned_args(jobs_: Sequence[NewJob]) -> list[Any]:
    """The arguments of `ENQUEUE_SPAWNED`: follow-up jobs with their reserved ids."""
    full = enqueue_args(jobs_)
    return [*full[:12], [j.id for j in jobs_], full[16], full[17], full[18]]


def settle_args(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The arguments of `SETTLE_NEW` from `_common.new_to_settle` rows."""
    return [[r[i] for r in rows] for i in range(4)]


def extras_args(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The arguments of `FINISHED_EXTRAS` from `_common.finished_extras` rows."""
    return [[r[i] for r in rows] for i in range(5)]
