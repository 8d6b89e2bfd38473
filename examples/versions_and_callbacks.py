"""Job type versions across a deploy, and lifecycle callbacks.

Shows:
- `@bj.job(..., version=2, upgrade={1: fn})`: jobs queued under version 1 of a job type
  are upgraded when a version 2 worker claims them; the upgraded input is stored with
  the attempt, and a log event says so;
- an upgrade step that raises: the job fails at once with `UpgradeFailed`;
- a job of version 2 claimed by a version 1 worker (a rolling deploy): it is given back,
  without using an attempt, for a worker that knows version 2;
- `on_success(job, output)` and `on_failure(job, error)`: run after the outcome is
  stored; a plain function runs in a thread; what a callback raises is logged and never
  changes the job.

Run it:

    python examples/versions_and_callbacks.py

It takes about five seconds: a job given back waits that long before it is offered
again. It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import anyio
from pydantic import BaseModel

import brains_jobs as bj

# -- yesterday's deploy: version 1 of the job type ----------------------------------


class GreetV1(BaseModel):
    name: str


class Greeting(BaseModel):
    text: str


async def greet_v1(ctx: bj.JobContext, inp: GreetV1) -> Greeting:
    """Greet someone by name."""
    return Greeting(text=f"Hello {inp.name}")


GREET_V1 = bj.JobDefinition("example.greet", greet_v1, GreetV1, Greeting)


# -- today's deploy: version 2, with an upgrade from version 1 and callbacks --------


class GreetV2(BaseModel):
    first: str
    last: str
    formal: bool = True


def split_name(v1: dict[str, Any]) -> dict[str, Any]:
    """The input of version 1 as that of version 2 (raises for a single name)."""
    first, last = v1.pop("name").split(" ", 1)
    return {**v1, "first": first, "last": last}


async def greeted(job: bj.Job, output: Greeting) -> None:
    """After a success: `output` is the typed output, `job` the stored record."""
    print(f"on_success: job #{job.id} ({job.status}) said {output.text!r}")
    if "Hopper" in output.text:
        raise RuntimeError("the mail server is down")  # logged; the job stays succeeded


def not_greeted(job: bj.Job, error: bj.AttemptError | None) -> None:
    """After a final failure (a plain function: it runs in a thread)."""
    assert error is not None
    print(f"on_failure: job #{job.id} ({job.status}) {error.type}")


@bj.job(
    "example.greet",
    version=2,
    upgrade={1: split_name},
    on_success=greeted,
    on_failure=not_greeted,
)
async def greet_v2(ctx: bj.JobContext, inp: GreetV2) -> Greeting:
    """Greet someone by first and last name."""
    return Greeting(text=f"{'Dear' if inp.formal else 'Hi'} {inp.first} {inp.last}")


# -- the application ------------------------------------------------------------------


async def log_lines(rt: bj.Runtime, job_id: int) -> list[str]:
    """The log lines of a finished job."""
    final = (await rt.get(job_id)).status
    lines = []
    async with rt.handle(job_id).events() as events:  # its history, then live events
        async for event in events:
            if event.kind is bj.EventKind.LOG:
                lines.append(event.message or "")
            if event.status is final:
                break
    return lines


async def main(url: str, artifacts: str) -> None:
    def runtime(definition: bj.JobDefinition[Any, Greeting]) -> bj.Runtime:
        """A runtime of one deploy: it knows one version of the job type."""
        return bj.Runtime(url, jobs=[definition], load_entrypoints=False, artifacts=artifacts)

    # Jobs enqueued before the deploy remember version 1.
    async with runtime(GREET_V1) as old:
        ada = await old.enqueue(GREET_V1, {"name": "Ada Lovelace"})
        plato = await old.enqueue(GREET_V1, {"name": "Plato"})
        grace = await old.enqueue(GREET_V1, {"name": "Grace Hopper"})
        version = (await old.get(ada.id)).version
        print(f"queued under version {version}: #{ada.id} #{plato.id} #{grace.id}")

    # A version 2 worker upgrades them as it claims them.
    async with runtime(greet_v2) as new:
        await new.run_worker(burst=True)  # returns once the callbacks have run too
        job = await new.get(ada.id)
        print(f"#{job.id} {job.status}: version {job.version}, input {job.input}")
        print(f"#{job.id} log: {await log_lines(new, ada.id)}")
        job = await new.get(plato.id)
        assert job.last_error is not None
        print(f"#{job.id} {job.status} after {job.attempts} attempt: {job.last_error.message}")
        job = await new.get(grace.id)
        print(f"#{job.id} {job.status} although its on_success raised: {job.output}")

        # During a rolling deploy, a version 2 job may reach a version 1 worker.
        edsger = await new.enqueue(greet_v2, {"first": "Edsger", "last": "Dijkstra"})
        print(f"queued under version {(await edsger.get()).version}: #{edsger.id}")

    async with runtime(GREET_V1) as old:
        worker = old.worker()
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            async with old.handle(edsger.id).events() as events:
                async for event in events:
                    if event.status is bj.JobStatus.QUEUED and event.attempt > 0:
                        print(f"a version 1 worker gave #{edsger.id} back: {event.message}")
                        break
            worker.stop()
        job = await old.get(edsger.id)
        print(f"#{job.id} {job.status}, {job.max_attempts - job.attempts} attempts left of 3")

    async with runtime(greet_v2) as new:
        worker = new.worker()
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            # A handle belongs to the runtime that made it: take a new one here.
            result = await new.handle(edsger.id).result(timeout=30)
            worker.stop()
        print(f"#{edsger.id} run by a version 2 worker: {result.text}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
