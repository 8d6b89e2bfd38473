"""Routes about the system rather than one job: job types, statistics, queues, workers,
schedules, plugins, health, and a burst worker run in the server process.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ..definitions import JobDefinition
from ..models import Health, Stats
from ..runtime import Runtime
from .auth import Admin, Reader
from .bodies import (
    PluginFailureOut,
    PluginOut,
    PluginsOut,
    QueueInfo,
    ScheduleOut,
    TypeInfo,
    WorkerRun,
    WorkersOut,
)
from .dependencies import RuntimeDep
from .errors import ERROR_RESPONSES

router = APIRouter(prefix="/api", tags=["system"], responses=ERROR_RESPONSES)
health_router = APIRouter(tags=["system"])


def type_info(rt: Runtime, definition: JobDefinition[Any, Any]) -> TypeInfo:
    """A job type as `GET /api/types` shows it."""
    return TypeInfo(
        name=definition.name,
        description=definition.description,
        plugin=rt.registry.owner(definition.name),
        input_schema=definition.input_model.model_json_schema(),
        output_schema=definition.output_model.model_json_schema(),
        queue=definition.queue,
        priority=definition.priority,
        max_attempts=definition.max_attempts,
        timeout=definition.timeout,
        max_crashes=definition.max_crashes,
        version=definition.version,
        schedule=None if definition.schedule is None else definition.schedule.describe(),
    )


@router.get("/types", response_model=list[TypeInfo], summary="The registered job types")
async def list_types(rt: RuntimeDep, principal: Reader) -> list[TypeInfo]:
    """Every job type this server knows: its input and output JSON Schemas, options and
    the plugin that registered it.
    """
    return [type_info(rt, definition) for definition in rt.registry]


@router.get("/stats", response_model=Stats, summary="Job counts, usage and run times")
async def stats(rt: RuntimeDep, principal: Reader) -> Stats:
    """Job counts by type and status, the types no live worker knows, usage by type and
    by owner (a `user` sees its own usage only), run time percentiles.
    """
    found = await rt.stats()
    if not principal.sees_all:
        own = {k: v for k, v in found.usage_by_owner.items() if k == principal.user}
        found = found.model_copy(update={"usage_by_owner": own})
    return found


@router.get("/queues", response_model=list[QueueInfo], summary="Queues, their types, workers")
async def queues(rt: RuntimeDep, principal: Reader) -> list[QueueInfo]:
    """Each queue some job type goes to by default or some live worker takes, with those
    types and workers (a worker that takes every queue is listed under each).
    """
    workers = await rt.workers()
    names = {d.queue for d in rt.registry} | {q for w in workers for q in w.queues}
    return [
        QueueInfo(
            name=name,
            types=[d.name for d in rt.registry if d.queue == name],
            workers=[w.id for w in workers if not w.queues or name in w.queues],
        )
        for name in sorted(names)
    ]


@router.get("/workers", response_model=WorkersOut, summary="The live workers")
async def workers(rt: RuntimeDep, principal: Reader) -> WorkersOut:
    """The live workers: id, host, pid, queues, types, concurrency, jobs running."""
    return WorkersOut(workers=await rt.workers())


@router.get("/schedules", response_model=list[ScheduleOut], summary="Recurring jobs")
async def schedules(rt: RuntimeDep, principal: Reader) -> list[ScheduleOut]:
    """Every schedule: its job type and timing, next and last run, whether it is paused
    (a `user` sees the schedules whose jobs it owns).
    """
    found = []
    for info in await rt.schedules():
        if not principal.sees_all and info.owner != principal.user:
            continue
        found.append(
            ScheduleOut(
                **info.model_dump(exclude={"schedule"}),
                schedule=info.schedule.describe(),
                missed=info.schedule.missed,
            )
        )
    return found


@router.get("/plugins", response_model=PluginsOut, summary="Loaded plugins")
async def plugins(rt: RuntimeDep, principal: Reader) -> PluginsOut:
    """The plugins loaded by this server, with their job types, and those that failed."""
    return PluginsOut(
        plugins=[
            PluginOut(
                name=p.name,
                module=p.module,
                distribution=p.distribution,
                version=p.version,
                job_types=list(p.job_types),
            )
            for p in rt.host.plugins()
        ],
        failures=[
            PluginFailureOut(name=f.name, distribution=f.distribution, error=f.error)
            for f in rt.host.failures
        ],
    )


@router.post("/worker/run", response_model=WorkerRun, summary="Run a burst worker (admin)")
async def run_worker(
    rt: RuntimeDep,
    principal: Admin,
    max_jobs: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    max_seconds: Annotated[float, Query(gt=0, le=3600)] = 10.0,
    queue: Annotated[list[str] | None, Query(description="queues to take; repeatable")] = None,
) -> WorkerRun:
    """Run a burst worker in the server process: it claims jobs of the types this server
    knows (of `queue`, repeatable; default: every queue) until none is ready, `max_jobs`
    were claimed or `max_seconds` passed, lets the running ones finish, and answers with
    how many it ran.
    """
    started = time.monotonic()
    worker = await rt.run_worker(
        queues=queue,
        burst=True,
        max_jobs=max_jobs,
        max_seconds=max_seconds,
        maintenance=False,
    )
    return WorkerRun(
        worker_id=worker.id, processed=worker.processed, seconds=time.monotonic() - started
    )


@health_router.get(
    "/healthz",
    response_model=Health,
    summary="Health (no credentials needed)",
    responses={503: {"model": Health, "description": "unhealthy"}},
)
async def healthz(rt: RuntimeDep) -> JSONResponse:
    """Whether the database answers and its schema is current, with the live workers:
    200 when healthy, 503 otherwise.
    """
    health = await rt.health()
    return JSONResponse(health.model_dump(mode="json"), status_code=200 if health.ok else 503)
