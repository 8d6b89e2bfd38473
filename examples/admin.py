"""Failed jobs and what an operator can do about them.

Shows:
- every attempt of a job kept, with its worker, how it ended and its error
  (`rt.attempts`);
- `rt.retry`: the same job again, with a fresh allowance of attempts, saying so;
- `rt.resubmit`: a new job with the same input and options, linked by `original_id`;
- `rt.force_complete`: an output given by hand, checked against the output model
  (`InvalidJobOutput`), and `rt.force_fail` with a reason;
- `rt.move` to another queue and priority;
- the bulk actions `rt.retry_many` and `rt.cancel_many`: a time bound is required,
  `dry_run` only reports, at most `limit` jobs are touched;
- the audit trail: each action an event naming its `actor`.

Run it:

    python examples/admin.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta

import anyio
from pydantic import BaseModel

import brains_jobs as bj

# -- a job type that fails while its upstream is down --------------------------------

DOWN = {"feed-b", "feed-c", "feed-x"}  # the feeds that fail, until "fixed" below


class Feed(BaseModel):
    name: str


class Imported(BaseModel):
    feed: str
    rows: int


@bj.job("example.import-feed", max_attempts=2, backoff=0.01, backoff_cap=0.02)
async def import_feed(ctx: bj.JobContext, feed: Feed) -> Imported:
    """Import a feed (here: fail while its upstream is down)."""
    if feed.name in DOWN:
        raise ConnectionError(f"{feed.name} is down")
    return Imported(feed=feed.name, rows=len(feed.name) * 10)


# -- the application ------------------------------------------------------------------


async def audit_trail(rt: bj.Runtime, job_id: int) -> list[str]:
    """The status changes and actions of a finished job, up to its final status."""
    final = (await rt.get(job_id)).status
    lines = []
    async with rt.handle(job_id).events() as events:  # its history, then live events
        async for event in events:
            if event.kind is bj.EventKind.STATUS and event.status is not bj.JobStatus.RUNNING:
                by = f" by {event.actor}" if event.actor else ""
                why = f": {event.message}" if event.message else ""
                lines.append(f"{event.status}{by}{why}")
            if event.status is final:
                break
    return lines


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(
        url, jobs=[import_feed], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        since = datetime.now(UTC) - timedelta(minutes=1)
        a, b, c = [
            await rt.enqueue(import_feed, {"name": n}) for n in ("feed-a", "feed-b", "feed-c")
        ]
        await rt.run_worker(burst=True, worker_id="worker-1")

        # Every attempt is kept: who ran it, how it ended, and its error.
        for attempt in await rt.attempts(b.id):
            assert attempt.error is not None and attempt.error.traceback
            print(
                f"job #{b.id} attempt {attempt.number} on {attempt.worker_id}: {attempt.status},"
                f" {attempt.error.type}: {attempt.error.message}"
            )

        # The upstream is back: retry runs the same job again, with a fresh allowance.
        DOWN.clear()
        await rt.retry(b.id, actor="ann")
        job = await rt.get(b.id)
        print(f"retried #{b.id}: {job.status}, attempts {job.attempts}/{job.max_attempts}")
        await rt.run_worker(burst=True)
        print(
            f"#{b.id} now: {(await b.result()).rows} rows after {(await b.get()).attempts} attempts"
        )

        # Resubmit: a new job with the same input and options, linked to the original.
        again = await rt.resubmit(a.id, actor="ann")
        print(f"resubmitted #{a.id} as #{again.id} (original_id={(await again.get()).original_id})")

        # Settle a failed job by hand: the output is checked against the output model.
        try:
            await rt.force_complete(c.id, {"feed": "feed-c", "rows": "many"}, actor="ann")
        except bj.InvalidJobOutput as exc:
            print(f"rejected: {exc}")
        await rt.force_complete(c.id, Imported(feed="feed-c", rows=0), actor="ann")
        print(f"#{c.id} completed by hand: {(await c.result()).rows} rows")

        # Fail a job that should not run, move another to a quieter queue.
        stale = await rt.enqueue(import_feed, {"name": "feed-old"}, delay=3600)
        await rt.force_fail(stale.id, "the feed was retired", actor="bob")
        error = (await stale.get()).last_error
        assert error is not None
        print(f"#{stale.id} failed by hand: {error.type}: {error.message}")
        later = await rt.enqueue(import_feed, {"name": "feed-big"}, delay=3600)
        await rt.move(later.id, queue="bulk", priority=-5, actor="bob")
        job = await rt.get(later.id)
        print(f"#{later.id} moved: queue={job.queue} priority={job.priority}")

        # Bulk actions: bounded in time, previewed with dry_run, capped by limit.
        DOWN.add("feed-x")
        batch = [
            await rt.enqueue(import_feed, {"name": "feed-x"}, tags=["nightly"]) for _ in range(3)
        ]
        await rt.run_worker(burst=True)
        DOWN.clear()
        try:
            await rt.retry_many(tag="nightly")
        except bj.InvalidJobOption as exc:
            print(f"rejected: {exc}")
        preview = await rt.retry_many(tag="nightly", created_after=since, dry_run=True)
        print(f"dry run: would retry {len(preview.matched)} jobs, changed {len(preview.changed)}")
        done = await rt.retry_many(tag="nightly", created_after=since, limit=2, actor="ann")
        print(f"retried {sorted(done.changed)} of {sorted(h.id for h in batch)} (newest first)")
        cancelled = await rt.cancel_many(tag="nightly", created_after=since, actor="bob")
        print(f"cancelled {len(cancelled.changed)} of them before they ran again")

        # The audit trail: every action, with who asked for it.
        for job_id in (b.id, c.id):
            for line in await audit_trail(rt, job_id):
                print(f"#{job_id} audit: {line}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
