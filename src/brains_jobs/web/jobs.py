"""Routes that create and read jobs: `POST /api/jobs`, `GET /api/jobs`,
`GET /api/jobs/{id}`, `GET /api/jobs/{id}/events`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from ..exceptions import InvalidJobOption, JobNotFound
from ..models import Job, JobPage, JobStatus
from .auth import Reader, Writer
from .bodies import EnqueueBody, EventPage, JobDetail
from .dependencies import MAX_ID, JobId, RuntimeDep, visible_job
from .errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=ERROR_RESPONSES)

# The request body's schema in the OpenAPI document is replaced by one alternative per
# registered job type (see `brains_jobs.web.openapi`).
ENQUEUE_OPERATION = "enqueue_job"


@router.post(
    "",
    status_code=201,
    response_model=Job,
    operation_id=ENQUEUE_OPERATION,
    summary="Enqueue a job (or create a tracking job, with track_ttl)",
    responses={200: {"model": Job, "description": "a job already held the unique key"}},
)
async def enqueue_job(
    body: EnqueueBody, rt: RuntimeDep, principal: Writer, response: Response
) -> Job:
    """Validate the input against the type's input model and enqueue the job, owned by
    the caller. 201 with the job; 200 with the existing job when `unique_key` is held
    (`on_conflict="return_existing"`, the default).
    """
    definition = rt.registry.get(body.type)
    options = body.options()
    for parent in body.depends_on or ():
        try:
            await visible_job(rt, principal, parent)
        except JobNotFound:
            raise InvalidJobOption("depends_on", f"no job with id {parent}") from None
    if body.track_ttl is not None:
        handle = await rt.track(
            definition, body.input, ttl=body.track_ttl, owner=principal.user, **options
        )
    else:
        handle = await rt.enqueue(definition, body.input, owner=principal.user, **options)
    job = await rt.get(handle.id)
    if not handle.created:
        if not principal.sees(job):
            # The key is held by someone else's job: say so without showing it.
            raise InvalidJobOption("unique_key", "the key is held by another job")
        response.status_code = 200
    return job


@router.get("", response_model=JobPage, summary="List jobs, newest first")
async def list_jobs(
    rt: RuntimeDep,
    principal: Reader,
    type: Annotated[str | None, Query(max_length=128)] = None,
    status: JobStatus | None = None,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    owner: Annotated[str | None, Query(max_length=256)] = None,
    tag: Annotated[str | None, Query(max_length=256)] = None,
    created_after: AwareDatetime | None = None,
    created_before: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> JobPage:
    """Jobs matching every filter given, newest first; pass `next_cursor` back as
    `cursor` for the next page. A `user` sees only its own jobs.
    """
    if not principal.sees_all:
        if owner is not None and owner != principal.user:
            return JobPage(jobs=[])
        owner = principal.user
    return await rt.list(
        type=type,
        status=status,
        queue=queue,
        owner=owner,
        tag=tag,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{job_id}", response_model=JobDetail, summary="A job with its attempts")
async def get_job(job_id: JobId, rt: RuntimeDep, principal: Reader) -> JobDetail:
    """The job: input, output, progress, message, usage, timestamps, `parent_id`,
    `original_id`, and every attempt with its error (`attempt_history`).
    """
    job = await visible_job(rt, principal, job_id)
    attempts = await rt.attempts(job)
    return JobDetail.model_validate({**dict(job), "attempt_history": attempts})


@router.get("/{job_id}/events", response_model=EventPage, summary="A job's audit trail")
async def job_events(
    job_id: JobId,
    rt: RuntimeDep,
    principal: Reader,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> EventPage:
    """The job's events after `after`, oldest first: status changes with their actor,
    progress reports and the handler's log lines.
    """
    await visible_job(rt, principal, job_id)
    events = await rt.store.events_after(after, job_id=job_id, limit=limit)
    more = len(events) == limit
    return EventPage(events=events, next_after=events[-1].seq if more else None)
