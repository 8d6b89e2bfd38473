"""Unique jobs: one job per key at a time, whatever the number of enqueues.

Shows:
- a repeat of a held key returning the job that holds it (`handle.created` is False);
- `on_conflict="reject"` raising `DuplicateJob`, which names the holder;
- `enqueue_many` with a key per job: repeats in the batch and keys already held are
  skipped, and each handle says whether its job was created;
- debouncing with `on_conflict="replace"`: every repeat gives the queued job its input
  and run time, so the last one wins;
- the key let go once its job finished, or kept until the job is pruned
  (`unique_until="pruned"`);
- `rt.retry` refusing to run a job again while a newer job holds its key.

Run it:

    python examples/unique_jobs.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile

import anyio
from pydantic import BaseModel

import brains_jobs as bj

# -- job types ------------------------------------------------------------------------


class Reindex(BaseModel):
    index: str
    reason: str


class Reindexed(BaseModel):
    index: str
    reason: str


@bj.job("example.reindex", max_attempts=1)
async def reindex(ctx: bj.JobContext, inp: Reindex) -> Reindexed:
    """Rebuild a search index (here: say which, and why)."""
    return Reindexed(index=inp.index, reason=inp.reason)


class Digest(BaseModel):
    user: str
    items: list[str]


class Sent(BaseModel):
    text: str


@bj.job("example.digest", max_attempts=1)
async def digest(ctx: bj.JobContext, inp: Digest) -> Sent:
    """Send one message listing what changed."""
    return Sent(text=f"to {inp.user}: {', '.join(inp.items)}")


class Export(BaseModel):
    report: str
    broken: bool = False


class Exported(BaseModel):
    path: str


@bj.job("example.export", max_attempts=1)
async def export(ctx: bj.JobContext, inp: Export) -> Exported:
    """Write a report, or fail when told to."""
    if inp.broken:
        raise bj.PermanentError("the report's query is broken")
    return Exported(path=f"/exports/{inp.report}.csv")


# -- the application ------------------------------------------------------------------


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(
        url, jobs=[reindex, digest, export], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        # A key is held while its job waits, is queued or runs: a repeat gets that job.
        first = await rt.enqueue(
            reindex, Reindex(index="products", reason="price import"), unique_key="reindex:products"
        )
        again = await rt.enqueue(
            reindex, Reindex(index="products", reason="manual"), unique_key="reindex:products"
        )
        print(f"first: job #{first.id}, created={first.created}")
        print(f"again: the same job: {again.id == first.id}, created={again.created}")

        # Or refuse the repeat.
        try:
            await rt.enqueue(
                reindex,
                Reindex(index="products", reason="nightly"),
                unique_key="reindex:products",
                on_conflict="reject",
            )
        except bj.DuplicateJob as exc:
            print(f"rejected: {exc}")

        # A batch: one key per job. A key repeated in the batch, or held already, is
        # skipped; the handle of a skipped job refers to the holder.
        batch = await rt.enqueue_many(
            [
                bj.JobRequest(
                    reindex,
                    {"index": name, "reason": "schema change"},
                    {"unique_key": f"reindex:{name}"},
                )
                for name in ("orders", "products", "orders", "users")
            ]
        )
        print(f"batch created: {[h.created for h in batch]}")
        print(f"batch: products went to job #{batch[1].id}, orders twice to #{batch[2].id}")

        # Debounce: each change replaces the pending digest's input and pushes it back;
        # one message goes out, with everything.
        for items in (["price"], ["price", "stock"], ["price", "stock", "photo"]):
            pending = await rt.enqueue(
                digest,
                Digest(user="alice", items=items),
                unique_key="digest:alice",
                on_conflict="replace",
                delay=60,
            )
        job = await rt.get(pending.id)
        print(
            f"digest: {len((await rt.list(type='example.digest')).jobs)} job,"
            f" replaced={pending.replaced}, items={job.input['items']}"
        )
        # A repeat without `delay` or `run_at` makes the job due now.
        await rt.enqueue(
            digest,
            Digest(user="alice", items=["price", "stock", "photo", "title"]),
            unique_key="digest:alice",
            on_conflict="replace",
        )

        # Keep a key after the job finished, until it is pruned: a once-only job.
        welcome = await rt.enqueue(
            export, Export(report="welcome-bob"), unique_key="welcome:bob", unique_until="pruned"
        )

        await rt.run_worker(burst=True)
        print(f"digest sent {(await pending.result()).text}")

        # With the default `unique_until="finished"`, a finished job lets its key go.
        later = await rt.enqueue(
            reindex, Reindex(index="products", reason="next import"), unique_key="reindex:products"
        )
        print(f"after the run: a new job: {later.id != first.id}, created={later.created}")
        repeat = await rt.enqueue(export, Export(report="welcome-bob"), unique_key="welcome:bob")
        print(
            f"welcome:bob still held by finished job #{welcome.id}:"
            f" created={repeat.created}, status={(await welcome.status()).value}"
        )

        # A failed job does not take its key back from a newer job.
        failed = await rt.enqueue(
            export, Export(report="monthly", broken=True), unique_key="export:monthly"
        )
        await rt.run_worker(burst=True)
        newer = await rt.enqueue(export, Export(report="monthly"), unique_key="export:monthly")
        try:
            await rt.retry(failed.id)
        except bj.InvalidJobState as exc:
            print(f"retry refused: job #{newer.id} holds the key: {exc}")
        await rt.run_worker(burst=True)
        print(f"export:monthly by job #{newer.id}: {(await newer.result()).path}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
