"""Routes that act on one job: cancel, retry, resubmit, complete, fail, move, and the
progress reports of tracking jobs.

`complete` and `fail` do what the job needs: a running tracking job is ended by its
reporter (`Runtime.complete`, `Runtime.fail`); any other job is settled by hand
(`Runtime.force_complete`, `Runtime.force_fail`). Progress of a tracking job is
`POST /api/jobs/{id}/report`.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..exceptions import InvalidJobOption
from ..models import Job, JobStatus
from .auth import Writer
from .bodies import CancelResult, CompleteBody, FailBody, MoveBody, ReportBody
from .dependencies import JobId, RuntimeDep, visible_job
from .errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/jobs", tags=["actions"], responses=ERROR_RESPONSES)


def _actor(principal: Writer) -> str:
    return principal.user


@router.post("/{job_id}/cancel", response_model=CancelResult, summary="Cancel a job")
async def cancel_job(job_id: JobId, rt: RuntimeDep, principal: Writer) -> CancelResult:
    """Cancel a waiting, queued or running job: `status` is `cancelled`, or `running`
    when a running job was asked to stop (its worker stops it within a second).
    """
    await visible_job(rt, principal, job_id)
    status = await rt.cancel(job_id, actor=_actor(principal))
    return CancelResult(status=status, job=await rt.get(job_id))


@router.post("/{job_id}/retry", response_model=Job, summary="Run a job again")
async def retry_job(job_id: JobId, rt: RuntimeDep, principal: Writer) -> Job:
    """Queue a failed, cancelled or skipped job again with a fresh allowance of attempts."""
    await visible_job(rt, principal, job_id)
    await rt.retry(job_id, actor=_actor(principal))
    return await rt.get(job_id)


@router.post(
    "/{job_id}/resubmit", response_model=Job, status_code=201, summary="Copy a job as a new one"
)
async def resubmit_job(job_id: JobId, rt: RuntimeDep, principal: Writer) -> Job:
    """Enqueue a new job with the input and options of this one (in any status); the
    new job's `original_id` names this one.
    """
    await visible_job(rt, principal, job_id)
    handle = await rt.resubmit(job_id, actor=_actor(principal))
    return await rt.get(handle.id)


@router.post(
    "/{job_id}/complete", response_model=Job, summary="End a job as succeeded with an output"
)
async def complete_job(job_id: JobId, body: CompleteBody, rt: RuntimeDep, principal: Writer) -> Job:
    """A running tracking job: its reporter ends it (`usage` is added). Any other job:
    it is marked succeeded by hand (`usage` is not taken). The output is checked against
    the type's output model (422 naming each bad field).
    """
    job = await visible_job(rt, principal, job_id)
    if job.tracked and job.status is JobStatus.RUNNING:
        await rt.complete(job_id, body.output, usage=body.usage, actor=_actor(principal))
    else:
        _no_usage(body.usage)
        await rt.force_complete(job_id, body.output, actor=_actor(principal))
    return await rt.get(job_id)


@router.post("/{job_id}/fail", response_model=Job, summary="End a job as failed")
async def fail_job(job_id: JobId, body: FailBody, rt: RuntimeDep, principal: Writer) -> Job:
    """A running tracking job: its reporter fails it with `reason` (`usage` is added).
    Any other waiting, queued or running job: it fails for good by hand.
    """
    job = await visible_job(rt, principal, job_id)
    if job.tracked and job.status is JobStatus.RUNNING:
        await rt.fail(job_id, body.reason, usage=body.usage, actor=_actor(principal))
    else:
        _no_usage(body.usage)
        await rt.force_fail(job_id, body.reason, actor=_actor(principal))
    return await rt.get(job_id)


@router.post("/{job_id}/report", response_model=Job, summary="Report on a tracking job")
async def report_job(job_id: JobId, body: ReportBody, rt: RuntimeDep, principal: Writer) -> Job:
    """Progress (0.0 to 1.0), a message and usage of a running tracking job; each
    report gives it its ttl again. 409 for a job that workers run or that ended.
    """
    await visible_job(rt, principal, job_id)
    await rt.report(
        job_id,
        progress=body.progress,
        message=body.message,
        usage=body.usage,
        actor=_actor(principal),
    )
    return await rt.get(job_id)


@router.post("/{job_id}/move", response_model=Job, summary="Change a job's queue or priority")
async def move_job(job_id: JobId, body: MoveBody, rt: RuntimeDep, principal: Writer) -> Job:
    """Give the job another queue, priority or both (a running job: for its next attempts)."""
    await visible_job(rt, principal, job_id)
    await rt.move(job_id, queue=body.queue, priority=body.priority, actor=_actor(principal))
    return await rt.get(job_id)


def _no_usage(usage: dict[str, float] | None) -> None:
    if usage:
        raise InvalidJobOption("usage", "usage is taken for running tracking jobs only")
