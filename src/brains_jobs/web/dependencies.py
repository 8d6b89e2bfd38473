"""What routes take besides the principal: the runtime, and the jobs the caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from ..exceptions import ConfigurationError, JobNotFound
from ..models import Job
from ..runtime import Runtime
from .auth import Principal

#: The largest id a job or an event may have (a 32-bit integer column).
MAX_ID = 2**31 - 1


def get_runtime(request: Request) -> Runtime:
    """The app's runtime (open for as long as the app serves)."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise ConfigurationError("the web app has no runtime: see brains_jobs.web.create_app")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="the job's id")]


async def visible_job(rt: Runtime, principal: Principal, job_id: int) -> Job:
    """The job, if the principal may see it; `JobNotFound` otherwise (someone else's job
    is not found rather than forbidden, so that its existence stays private).
    """
    job = await rt.get(job_id)
    if not principal.sees(job):
        raise JobNotFound(job_id)
    return job
