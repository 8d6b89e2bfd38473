"""The job type the web application examples enqueue (`examples/flask_app.py`,
`examples/django_app/`), and a plugin module for the workers that run it.

A web process only enqueues and reads jobs; a worker process runs them. Both need the job
type: the web process passes it to `bj.SyncClient(jobs=[...])`, the worker loads this
module as a plugin:

    cd examples
    PYTHONPATH=. brains-jobs worker --db sqlite+aiosqlite:///webapp.db --plugin _webapp_jobs
"""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj


class Signup(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WelcomeEmail(BaseModel):
    to: str
    subject: str
    body: str


@bj.job("example.welcome-email", max_attempts=3, backoff=1.0, timeout=30)
async def welcome_email(ctx: bj.JobContext, inp: Signup) -> WelcomeEmail:
    """Write the welcome email of a new user (a real one would hand it to a mail server)."""
    await ctx.progress(0.5, "composing")
    await anyio.sleep(0.05)  # the mail server's round trip
    ctx.logger.info("welcome email sent to %s", inp.email)
    return WelcomeEmail(
        to=inp.email,
        subject=f"Welcome, {inp.name}!",
        body=f"Hello {inp.name}, your account is ready.",
    )


JOBS = [welcome_email]


def status_of(job: bj.Job) -> dict[str, Any]:
    """What the status views answer: where the job is, and its result or its error."""
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status.value,
        "attempts": job.attempts,
        "progress": job.progress,
    }
    if job.status is bj.JobStatus.SUCCEEDED:
        body["result"] = welcome_email.parse_output(job.output).model_dump()
    elif job.last_error is not None:
        body["error"] = f"{job.last_error.type}: {job.last_error.message}"
    return body


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    """The worker's side: `--plugin _webapp_jobs`."""
    for definition in JOBS:
        register(definition)
