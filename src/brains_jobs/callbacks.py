"""Lifecycle callbacks: `on_success(job, output)` after a job succeeded, `on_failure(job,
error)` after it failed for good.

They run after the outcome is stored, so they see the job as everyone else will; at
least once: whoever ended the job (the worker of its attempt; the rescuer; a person's
`force_complete`, `force_fail`; a tracking job's reporter) flags it in the same write,
runs its callback and then clears the flag, and a job still flagged a while later (that
process died in between) is taken by the callback sweeper of any process that knows its
type. What a callback raises, or a callback that overruns `CALLBACK_TIMEOUT`, is logged;
the job's status never changes.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .models import JobStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .definitions import JobDefinition
    from .models import Job
    from .registry import Registry
    from .store.roles import Store

logger = logging.getLogger("brains_jobs.callbacks")

CALLBACK_TIMEOUT = 60.0  # seconds a callback may take


async def run_callback(
    definition: JobDefinition[Any, Any], job: Job, status: JobStatus | None = None
) -> bool:
    """Run the callback of `definition` due for `job` ending in `status` (its stored
    status by default). Returns False when it raised or overran (it is logged).
    """
    status = job.status if status is None else status
    if status is JobStatus.SUCCEEDED and definition.on_success is not None:
        fn, hook = definition.on_success, "on_success"
        try:
            argument: Any = definition.parse_output(job.output)
        except Exception as exc:
            logger.error("job %d: its output does not parse for on_success: %s", job.id, exc)
            return False
    elif status is JobStatus.FAILED and definition.on_failure is not None:
        fn, hook, argument = definition.on_failure, "on_failure", job.last_error
    else:
        return True
    try:
        with anyio.fail_after(CALLBACK_TIMEOUT):
            if inspect.iscoroutinefunction(fn):
                await fn(job, argument)
            else:
                result = await anyio.to_thread.run_sync(fn, job, argument, abandon_on_cancel=True)
                if inspect.isawaitable(result):
                    await result
    except Exception as exc:
        logger.error(
            "job %d %s: %s raised %s: %s",
            job.id,
            job.type,
            hook,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"job_id": job.id, "job_type": job.type},
        )
        return False
    return True


def callback_due(registry: Registry, job_type: str, status: JobStatus) -> bool:
    """True when a job of `job_type` ending in `status` has a callback to run here."""
    if job_type not in registry:
        return False
    definition = registry.get(job_type)
    if status is JobStatus.SUCCEEDED:
        return definition.on_success is not None
    return status is JobStatus.FAILED and definition.on_failure is not None


async def run_flagged(store: Store, registry: Registry, ids: Sequence[int]) -> None:
    """Run the callbacks of the jobs `ids`, flagged by the write that ended them, and
    clear their flags.
    """
    if not ids:
        return
    for job in await store.get_many(ids):
        if job.type in registry:
            await run_callback(registry.get(job.type), job)
    await store.callbacks_done(ids)
