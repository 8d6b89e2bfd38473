"""Recurring jobs: a job type with a schedule of its own, schedules added at run time,
what became of each tick, and what a cron schedule does when the clocks change.

    python examples/schedules.py

Runs a worker (with the leader's scheduler beside it) for a few seconds on a temporary
SQLite database, then prints the schedules, the ticks of one of them, and the next runs
of a 02:30 daily job around the spring and autumn clock changes in Paris.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
from pydantic import BaseModel

import brains_jobs as bj


class Heartbeat(BaseModel):
    service: str = "api"  # a scheduled job type's input is its model's defaults


class Beat(BaseModel):
    service: str


@bj.job("example.heartbeat", schedule=bj.Every(timedelta(seconds=1)))
async def heartbeat(ctx: bj.JobContext, inp: Heartbeat) -> Beat:
    """Runs every second, on one worker, whatever the number of workers."""
    return Beat(service=inp.service)


class ImportIn(BaseModel):
    source: str


class Imported(BaseModel):
    rows: int


@bj.job("example.import")
async def import_job(ctx: bj.JobContext, inp: ImportIn) -> Imported:
    """Pretends to import a file."""
    return Imported(rows=len(inp.source))


def local(when: datetime | None, zone: str) -> str:
    return "-" if when is None else when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(
        url, jobs=[heartbeat, import_job], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        # Schedules live in the database: add them at run time, from anywhere.
        await rt.schedule(
            "nightly-import",
            import_job,
            ImportIn(source="s3://bucket/export.csv"),
            cron="0 0 * * *",
            timezone="UTC",
            missed="latest",  # after an outage, one run for the newest missed night
        )
        await rt.schedule("poll", import_job, {"source": "feed"}, every=timedelta(seconds=2))
        await rt.pause_schedule("poll")  # its ticks are recorded as skipped

        # A worker runs the maintenance services; its leader runs the scheduler.
        async with anyio.create_task_group() as tg:
            tg.start_soon(rt.run_worker)
            await anyio.sleep(3.5)
            tg.cancel_scope.cancel()

        for info in await rt.schedules():
            state = "paused" if info.paused else f"next {local(info.next_run_at, 'UTC')}"
            print(f"{info.name}: {info.schedule.describe()}, {state}")
        ticks = await rt.schedule_ticks("job:example.heartbeat", limit=100)
        outcomes = Counter(t.outcome for t in ticks)
        print(f"job:example.heartbeat: {outcomes['enqueued']} ticks enqueued, each one job")
        jobs = (await rt.list(type="example.heartbeat")).jobs
        assert len(jobs) == outcomes["enqueued"] == len({j.unique_key for j in jobs})
        skipped = await rt.schedule_ticks("poll", limit=1)
        if skipped:
            print(f"poll: last tick {skipped[0].outcome} ({skipped[0].detail})")
        await rt.unschedule("poll")

    # Wall-clock times follow the clock changes: 02:30 does not exist on 31 March in
    # Paris (it runs once, at 03:00), and happens twice on 27 October (it runs once).
    daily = bj.Cron("30 2 * * *", timezone="Europe/Paris")
    for start in (datetime(2024, 3, 29, tzinfo=UTC), datetime(2024, 10, 25, tzinfo=UTC)):
        tick: datetime | None = start
        runs = []
        for _ in range(4):
            tick = daily.next_after(tick) if tick else None
            runs.append(local(tick, "Europe/Paris"))
        print("02:30 Europe/Paris:", ", ".join(runs))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{os.path.join(tmp, 'jobs.db')}"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
