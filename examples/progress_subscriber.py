"""Follow progress while a worker runs: live events, one job's history, and a slow subscriber.

Shows:
1. `async for event in rt.events(...)`: every status change and progress report of the
   jobs, live, while a worker runs them in the same task group;
2. `handle.events()`: one job's whole history (replayed from the `job_events` table),
   then live events; stop at the final status;
3. a subscriber too slow for its buffer: it gets a `dropped` event saying which `seq`
   range it missed, and fills the gap from the audit trail with `rt.events(after=...)`.

Run it:

    python examples/progress_subscriber.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL`.
"""

from __future__ import annotations

import os
import tempfile

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj


class Chunks(BaseModel):
    name: str
    chunks: int = Field(default=4, ge=1, le=100)
    seconds: float = Field(default=0.02, ge=0)


class Done(BaseModel):
    name: str
    chunks: int


@bj.job("example.process", max_attempts=1)
async def process(ctx: bj.JobContext, inp: Chunks) -> Done:
    """Work through `chunks` pieces, reporting progress after each."""
    for i in range(1, inp.chunks + 1):
        await anyio.sleep(inp.seconds)
        await ctx.progress(i / inp.chunks, f"chunk {i}/{inp.chunks}")
    return Done(name=inp.name, chunks=inp.chunks)


def describe(event: bj.JobEvent) -> str:
    if event.kind is bj.EventKind.PROGRESS:
        return f"#{event.job_id} progress {(event.progress or 0) * 100:3.0f}% {event.message}"
    if event.kind is bj.EventKind.STATUS:
        assert event.status is not None
        return f"#{event.job_id} {event.status.value} (attempt {event.attempt})"
    return f"#{event.job_id} {event.kind.value}: {event.message}"


def is_final(event: bj.JobEvent) -> bool:
    return event.status is not None and event.status.is_final


async def follow_live(rt: bj.Runtime) -> list[bj.JobHandle[Done]]:
    """1. Subscribe first, then enqueue and run: nothing is missed."""
    print("== live events")
    async with anyio.create_task_group() as tg, rt.events(types={"example.process"}) as events:
        handles = await rt.enqueue_many(process, [{"name": "a"}, {"name": "b", "chunks": 2}])
        tg.start_soon(lambda: rt.run_worker(concurrency=2, burst=True))
        waiting = {h.id for h in handles}
        async for event in events:
            print(describe(event))
            if is_final(event):
                waiting.discard(event.job_id)
                if not waiting:
                    break
    return handles


async def replay_one(handle: bj.JobHandle[Done]) -> None:
    """2. A finished job's history: `handle.events()` starts from its first event."""
    print(f"== history of job #{handle.id}")
    async for event in handle.events():
        print(f"seq {event.seq}: {describe(event)}")
        if is_final(event):
            break  # the subscription stays live after the history: stop at the end
    print(f"result: {await handle.result()}")


async def slow_subscriber(rt: bj.Runtime, jobs: int) -> None:
    """3. A subscriber that reads slower than events arrive, with a small buffer."""
    print("== slow subscriber")
    finished: set[int] = set()
    last_seq = 0  # the last event handled: a replay starts after it
    recovered = 0

    def handle_event(event: bj.JobEvent) -> None:
        nonlocal last_seq
        last_seq = event.seq
        if is_final(event):
            finished.add(event.job_id)

    async with anyio.create_task_group() as tg:
        async with rt.events(types={"example.process"}, buffer=8) as events:

            async def enqueue_and_work() -> None:
                inputs = [{"name": f"n{i}", "seconds": 0} for i in range(jobs)]
                await rt.enqueue_many(process, inputs)
                await rt.run_worker(concurrency=jobs, burst=True)

            tg.start_soon(enqueue_and_work)
            async for event in events:
                if event.kind is bj.EventKind.DROPPED:
                    # The worker never waits for a subscriber: this one fell behind and its
                    # buffer overflowed. Every event is a row, so read the gap back; the
                    # seq check skips anything this subscriber has handled already.
                    data = event.data or {}
                    print(f"dropped: {event.message} (seq {data['first_seq']}..{data['last_seq']})")
                    if last_seq < data["last_seq"]:
                        async with rt.events(types={"example.process"}, after=last_seq) as replay:
                            async for old in replay:
                                handle_event(old)
                                recovered += 1
                                if old.seq >= data["last_seq"]:
                                    break
                elif event.seq > last_seq:
                    handle_event(event)
                    await anyio.sleep(0.05)  # a slow consumer: a UI, a network peer...
                if len(finished) == jobs:
                    break
    print(f"read {recovered} event(s) back from the audit trail")
    print(f"followed all {len(finished)} jobs to the end")


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(url, jobs=[process], load_entrypoints=False, artifacts=artifacts) as rt:
        handles = await follow_live(rt)
        await replay_one(handles[1])
        await slow_subscriber(rt, jobs=10)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
