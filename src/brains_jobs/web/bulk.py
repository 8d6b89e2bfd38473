"""`POST /api/jobs/bulk/{action}`: retry or cancel many jobs, by ids or by a filter.

By filter, the bounds of `Runtime.retry_many` and `Runtime.cancel_many` apply: a time
bound (`created_after`, `created_before`) is required and at most `limit` jobs are acted
on, newest first. By ids, each job is acted on as the single action does; a job that the
action does not apply to, that moved on meanwhile, or that the caller may not see is
reported as skipped.
"""

from __future__ import annotations

import enum

from fastapi import APIRouter

from ..bulk import CANCELLABLE, RETRYABLE, BulkResult
from ..exceptions import InvalidJobOption, InvalidJobState, JobNotFound
from ..runtime import Runtime
from .auth import Principal, Writer
from .bodies import BulkBody
from .dependencies import RuntimeDep, visible_job
from .errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/jobs/bulk", tags=["actions"], responses=ERROR_RESPONSES)

_FILTERS = ("status", "type", "queue", "tag", "owner", "created_after", "created_before")


class BulkAction(enum.StrEnum):
    """What a bulk request does to each job."""

    RETRY = "retry"
    CANCEL = "cancel"


@router.post("/{action}", response_model=BulkResult, summary="Retry or cancel many jobs")
async def bulk_action(
    action: BulkAction, body: BulkBody, rt: RuntimeDep, principal: Writer
) -> BulkResult:
    """Retry (failed, cancelled, skipped) or cancel (waiting, queued, running) the jobs
    given by `ids`, or those matching the filter. Answers with the jobs `matched`,
    `changed` and `skipped`; a dry run changes nothing.
    """
    return await run_bulk(rt, principal, action, body)


async def run_bulk(
    rt: Runtime, principal: Principal, action: BulkAction, body: BulkBody
) -> BulkResult:
    """Apply `action` to the jobs of `body` (ids, or a filter with a time bound) that
    `principal` may act on: what `POST /api/jobs/bulk/{action}` and the dashboard do.
    """
    if body.ids is not None:
        given = [name for name in _FILTERS if getattr(body, name) is not None]
        if given:
            raise InvalidJobOption(given[0], "give ids or a filter, not both")
        return await _by_ids(rt, principal, action, body.ids, body.dry_run)
    owner = body.owner
    if not principal.sees_all:
        if owner is not None and owner != principal.user:
            return BulkResult(action=action.value, dry_run=body.dry_run)
        owner = principal.user
    many = rt.retry_many if action is BulkAction.RETRY else rt.cancel_many
    return await many(
        status=body.status,
        type=body.type,
        queue=body.queue,
        tag=body.tag,
        owner=owner,
        created_after=body.created_after,
        created_before=body.created_before,
        limit=body.limit,
        dry_run=body.dry_run,
        actor=principal.user,
    )


async def _by_ids(
    rt: Runtime, principal: Principal, action: BulkAction, ids: list[int], dry_run: bool
) -> BulkResult:
    result = BulkResult(action=action.value, dry_run=dry_run)
    eligible = RETRYABLE if action is BulkAction.RETRY else CANCELLABLE
    for job_id in dict.fromkeys(ids):
        try:
            job = await visible_job(rt, principal, job_id)
        except JobNotFound:
            result.skipped.append(job_id)
            continue
        if job.status not in eligible:
            result.skipped.append(job_id)
            continue
        result.matched.append(job_id)
        if dry_run:
            continue
        try:
            if action is BulkAction.RETRY:
                await rt.retry(job_id, actor=principal.user)
            else:
                await rt.cancel(job_id, actor=principal.user)
        except (InvalidJobState, JobNotFound):
            result.skipped.append(job_id)
        else:
            result.changed.append(job_id)
    return result
