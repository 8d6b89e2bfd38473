"""The job types of `web_bench.py`, loaded by its server and worker processes as a plugin
(`--plugin web_bench_jobs`, with this directory on PYTHONPATH).

- `webbench.noop`:     does nothing (the drains)
- `webbench.progress`: reports progress `steps` times (10 by default), then succeeds (the
                       event fan-out: `running`, `steps` progress events and `succeeded`
                       per job)
"""

from __future__ import annotations

from pydantic import BaseModel, Field

import brains_jobs as bj


class Nothing(BaseModel):
    i: int = 0


class Steps(BaseModel):
    steps: int = Field(10, ge=0, le=1000)


class Done(BaseModel):
    ok: bool = True


@bj.job("webbench.noop", max_attempts=1)
async def noop(ctx: bj.JobContext, inp: Nothing) -> Done:
    """Does nothing."""
    return Done()


@bj.job("webbench.progress", max_attempts=1)
async def progress(ctx: bj.JobContext, inp: Steps) -> Done:
    """Reports progress `steps` times."""
    for step in range(1, inp.steps + 1):
        await ctx.progress(step / inp.steps, f"step {step}")
    return Done()


ALL = [noop, progress]


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    for definition in ALL:
        register(definition)
