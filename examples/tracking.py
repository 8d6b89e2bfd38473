"""Tracking jobs (work done outside any worker, reported from anywhere) and usage.

Shows:
- `rt.track`: a job that is `running` at once and that no worker runs; another process
  reports on it (`report`: progress, message, usage) and ends it (`complete`, `fail`);
  the output is checked against the output model (`InvalidJobOutput`);
- a tracking job of a type this process does not know: its input is any JSON object;
- a tracking job whose reporter fell silent past its `ttl`: it fails as `Lost`;
- `ctx.hand_over(ttl)`: a worker's handler starts work elsewhere and leaves the job
  `running`, for the outside process to finish;
- `ctx.usage(...)`: numbers a handler reports, summed over attempts and, in
  `rt.stats()`, by type and by owner; `stats.durations` gives run time percentiles.

Run it:

    python examples/tracking.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from typing import Any

import anyio
from pydantic import BaseModel

import brains_jobs as bj

# -- job types ------------------------------------------------------------------------


class Video(BaseModel):
    name: str


class Transcoded(BaseModel):
    url: str
    seconds: int


@bj.job("example.transcode", max_attempts=1)
async def transcode(ctx: bj.JobContext, video: Video) -> Transcoded:
    """Submit a video to an outside transcoding service, which finishes the job."""
    ctx.usage(api_calls=1)
    await ctx.progress(0.05, "submitted")
    # The service reports on job `ctx.job_id` from now on, within 10 minutes each time.
    ctx.hand_over(ttl=timedelta(minutes=10))


class Text(BaseModel):
    text: str


class Summary(BaseModel):
    summary: str


@bj.job("example.summarize", max_attempts=2, backoff=0.01, backoff_cap=0.02)
async def summarize(ctx: bj.JobContext, inp: Text) -> Summary:
    """Summarize a text (here: its first words), metering what each attempt used."""
    ctx.usage(cost_cents=3, input_tokens=1200)
    if inp.text.startswith("!") and ctx.attempt == 1:
        raise TimeoutError("the model did not answer")
    return Summary(summary=" ".join(inp.text.lstrip("!").split()[:3]))


JOBS: list[bj.JobDefinition[Any, Any]] = [transcode, summarize]


def amounts(usage: dict[str, float]) -> str:
    """Usage as `name=amount` pairs, by name."""
    return " ".join(f"{name}={amount:g}" for name, amount in sorted(usage.items()))


# -- the application ------------------------------------------------------------------


async def main(url: str, artifacts: str) -> None:
    async with (
        bj.Runtime(url, jobs=JOBS, load_entrypoints=False, artifacts=artifacts) as rt,
        # Another process, such as the outside service's callback endpoint.
        bj.Runtime(url, jobs=JOBS, load_entrypoints=False, artifacts=artifacts) as elsewhere,
    ):
        # A job that no worker runs: it is running at once, owned by the team that pays.
        handle = await rt.track(
            transcode, {"name": "intro.mp4"}, ttl=timedelta(minutes=10), owner="team-video"
        )
        job = await rt.get(handle.id)
        print(f"tracking job #{job.id}: {job.status}, tracked={job.tracked}, ttl={job.track_ttl}")

        # Reports come from anywhere; each one gives the job its ttl again.
        await elsewhere.report(handle.id, progress=0.5, message="half way", actor="transcoder")
        await elsewhere.report(handle.id, usage={"gpu_seconds": 40}, actor="transcoder")
        job = await rt.get(handle.id)
        print(f"#{job.id} progress {job.progress:.0%} ({job.progress_message})")
        try:
            await elsewhere.complete(handle.id, {"url": "s3://out/intro.mp4"})
        except bj.InvalidJobOutput as exc:
            print(f"rejected: {exc}")
        await elsewhere.complete(
            handle.id, Transcoded(url="s3://out/intro.mp4", seconds=93), usage={"gpu_seconds": 35}
        )
        result = await handle.result(timeout=10)
        used = amounts((await handle.get()).usage)
        print(f"#{handle.id} succeeded: {result.url}, {result.seconds}s, usage {used}")

        # A type this process does not know: the input is any JSON object.
        sync = await rt.track("crm.sync", {"account": 7}, ttl=60, owner="team-sales")
        await elsewhere.fail(sync.id, "the CRM refused the token")
        try:
            await sync.result(timeout=10)
        except bj.JobFailed as exc:
            print(f"#{sync.id} crm.sync: {exc.error}")

        # A reporter that falls silent: past its ttl, the rescuer fails the job as lost
        # (any process that runs a worker runs the rescuer; a burst worker, once).
        silent = await rt.track("crm.sync", {"account": 8}, ttl=0.2)
        await anyio.sleep(0.5)
        await rt.run_worker(burst=True)
        error = (await rt.get(silent.id)).last_error
        assert error is not None
        print(f"#{silent.id} lost: {error.type}: {error.message}")
        try:
            await elsewhere.report(silent.id, progress=0.9)
        except bj.InvalidJobState as exc:
            print(f"late report refused: {exc}")

        # A worker's handler hands its job over: it stays running, as a tracking job.
        handed = await rt.enqueue(transcode, {"name": "outro.mp4"}, owner="team-video")
        await rt.run_worker(burst=True)
        job = await rt.get(handed.id)
        print(f"#{job.id} after its handler: {job.status}, tracked={job.tracked}")
        await elsewhere.report(handed.id, progress=0.8, usage={"gpu_seconds": 20})
        await elsewhere.complete(handed.id, {"url": "s3://out/outro.mp4", "seconds": 12})
        print(f"#{handed.id} finished outside: {(await handed.result(timeout=10)).url}")

        # Usage is summed over a job's attempts, and by type and owner in the stats.
        first = await rt.enqueue(summarize, {"text": "!a retried attempt costs twice"}, owner="ann")
        await rt.enqueue(summarize, {"text": "one attempt costs once"}, owner="bob")
        await rt.run_worker(burst=True)
        job = await rt.get(first.id)
        print(f"#{job.id} usage over {job.attempts} attempts: {amounts(job.usage)}")
        stats = await rt.stats()
        for job_type in ("example.summarize", "example.transcode"):
            print(f"usage of {job_type}: {amounts(stats.usage[job_type])}")
        for owner in ("ann", "bob", "team-video"):
            print(f"usage of {owner}: {amounts(stats.usage_by_owner[owner])}")
        durations = stats.durations["example.summarize"]
        print(f"example.summarize ran {durations.count} times; p95 {durations.p95:.3f}s")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
