"""Dependencies and workflows: jobs that wait for other jobs, chains and groups.

Shows:
- `depends_on=[handle, ...]`: the job is `waiting` until its parents are final, then
  queued, and reads their typed outputs with `ctx.parent_output`;
- `rt.chain(a.bind(input), b, c)`: each step takes the previous step's output as its
  input, and the last step's handle is typed;
- `rt.group([...], then=callback)`: the callback runs once, when every member is final,
  with a `bj.GroupResults` of their outputs (`on_member_failure="run"`: even when some
  failed);
- a failed parent skipping what depends on it (`skipped`, transitively), or not
  (`on_parent_failure="run"`).

Run it:

    python examples/dependencies.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile

import anyio
from pydantic import BaseModel

import brains_jobs as bj

# A small "web" for the fetcher to read.
PAGES = {
    "https://example.com/a": "jobs wait for other jobs",
    "https://example.com/b": "chains pass outputs on",
    "https://example.com/c": "groups gather",
}

# -- job types ------------------------------------------------------------------------


class Url(BaseModel):
    url: str


class Page(BaseModel):
    url: str
    text: str


@bj.job("example.fetch", max_attempts=1)
async def fetch(ctx: bj.JobContext, inp: Url) -> Page:
    """Fetch a page (from PAGES), or fail for good."""
    if inp.url not in PAGES:
        raise bj.PermanentError(f"404 for {inp.url}")
    return Page(url=inp.url, text=PAGES[inp.url])


class Counted(BaseModel):
    url: str
    words: int


@bj.job("example.count", max_attempts=1)
async def count(ctx: bj.JobContext, inp: Page) -> Counted:
    """Count a page's words (a chain step: its input is the fetch's output)."""
    return Counted(url=inp.url, words=len(inp.text.split()))


class Saved(BaseModel):
    key: str


@bj.job("example.save", max_attempts=1)
async def save(ctx: bj.JobContext, inp: Counted) -> Saved:
    """Save a count (the last step of the chain)."""
    return Saved(key=f"{inp.url.rsplit('/', 1)[-1]}={inp.words}")


class Digest(BaseModel):
    pages: int
    failed: int
    words: int


@bj.job("example.digest", max_attempts=1)
async def digest(ctx: bj.JobContext, inp: bj.GroupResults[Page]) -> Digest:
    """A group's callback: every member's output (None for a member that failed)."""
    pages = inp.succeeded()
    return Digest(
        pages=len(pages),
        failed=len(inp.results) - len(pages),
        words=sum(len(p.text.split()) for p in pages),
    )


class Report(BaseModel):
    fetches: list[int]


class Reported(BaseModel):
    text: str


@bj.job("example.report", max_attempts=1)
async def report(ctx: bj.JobContext, inp: Report) -> Reported:
    """Read the outputs of the fetches it depends on (their ids are in its input)."""
    lines = []
    for job_id in inp.fetches:
        try:
            page = await ctx.parent_output(ctx.handle(fetch, job_id))
            lines.append(f"{page.url}: {page.text!r}")
        except bj.JobFailed as exc:  # only with on_parent_failure="run"
            lines.append(f"job {job_id} failed ({exc})")
    return Reported(text="; ".join(lines))


# -- the application ------------------------------------------------------------------


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(
        url, jobs=[fetch, count, save, digest, report], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        # A job that waits for two others.
        a = await rt.enqueue(fetch, Url(url="https://example.com/a"))
        b = await rt.enqueue(fetch, Url(url="https://example.com/b"))
        both = await rt.enqueue(report, Report(fetches=[a.id, b.id]), depends_on=[a, b])
        print(f"report #{both.id}: {(await both.status()).value} for #{a.id} and #{b.id}")

        # A chain: fetch -> count -> save; `flow` is a JobHandle[Saved].
        flow = await rt.chain(fetch.bind(Url(url="https://example.com/c")), count, save)
        broken = await rt.chain_steps(fetch.bind(Url(url="https://example.com/gone")), count, save)

        # A group: fetch three pages at once, then digest them all.
        urls = ["https://example.com/a", "https://example.com/gone", "https://example.com/c"]
        tolerant = await rt.group(
            [fetch.bind(Url(url=u)) for u in urls], then=digest, on_member_failure="run"
        )
        strict = await rt.group([fetch.bind(Url(url=u)) for u in urls], then=digest)

        # A job that runs even when its parent failed, and finds the failure.
        gone = broken[0]
        after = await rt.enqueue(
            report, Report(fetches=[gone.id]), depends_on=[gone], on_parent_failure="run"
        )

        await rt.run_worker(burst=True)

        print(f"report: {(await both.result()).text}")
        saved: Saved = await flow.result()
        print(f"chain: saved {saved.key}")
        statuses = [(await step.status()).value for step in broken]
        print(f"chain with a missing page: {' -> '.join(statuses)}")
        # Why: the skip is in the step's history (a replay, from its first event on).
        async with broken[1].events() as events:
            async for event in events:
                if event.status is bj.JobStatus.SKIPPED:
                    print(f"  step 2 never ran: {event.message}")
                    break
        print(f"group (on_member_failure='run'): {await tolerant.result()}")
        print(f"group (on_member_failure='skip'): callback {(await strict.status()).value}")
        print(f"after a failed parent: {(await after.result()).text}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
