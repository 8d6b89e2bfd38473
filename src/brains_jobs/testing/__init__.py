"""Helpers for testing job types and plugins: a runtime on a temporary SQLite file, run a
job inline and get its typed output, capture events.

The pytest fixtures built on these come with the package (see `pytest_plugin`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel

from ..definitions import JobDefinition
from ..handle import JobHandle
from ..maintenance import Rescuer
from ..models import EventKind, Job, JobEvent
from ..runtime import Runtime

Out = TypeVar("Out", bound=BaseModel)


@contextlib.asynccontextmanager
async def runtime(
    directory: str | Path,
    *,
    plugins: Iterable[object | str] = (),
    jobs: Iterable[JobDefinition[Any, Any]] = (),
    **options: Any,
) -> AsyncIterator[Runtime]:
    """An open `Runtime` on a fresh SQLite file in `directory`, with artifacts beside it
    and no entry-point plugins: only `plugins` and `jobs` given here.
    """
    folder = Path(directory)
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    options.setdefault("load_entrypoints", False)
    options.setdefault("artifacts", str(folder / "artifacts"))
    url = f"sqlite+aiosqlite:///{folder / 'jobs.db'}"
    async with Runtime(url, plugins=plugins, jobs=jobs, **options) as rt:
        yield rt


async def run_until_final(
    rt: Runtime,
    job: JobDefinition[Any, Any] | str,
    inp: Any,
    *,
    timeout: float = 30.0,
    **options: Any,
) -> Job:
    """Enqueue one job, run a worker until the job is final, and return its record
    (status, output, every attempt's error), whatever the outcome.
    """
    handle = await rt.enqueue(job, inp, **options)
    worker = rt.worker(concurrency=1, shutdown_timeout=1.0)
    async with anyio.create_task_group() as tg:
        await tg.start(worker.run)
        try:
            record = await handle.wait(timeout)
        finally:
            worker.stop()
    return record


async def run_job(
    rt: Runtime,
    job: JobDefinition[Any, Out],
    inp: Any,
    *,
    timeout: float = 30.0,
    **options: Any,
) -> Out:
    """Enqueue one job, run a worker until it is final, and return its typed output
    (or raise `JobFailed` / `JobCancelled`).
    """
    record = await run_until_final(rt, job, inp, timeout=timeout, **options)
    handle: JobHandle[Out] = JobHandle(rt, record.id, job)
    return await handle.result(timeout=0)


async def rescue(rt: Runtime) -> list[int]:
    """One pass of the lease rescuer, as a worker's maintenance runs it; returns the ids
    of the jobs it put back to work (or ended).
    """
    return await Rescuer().rescue(rt.maintenance().ctx)


@contextlib.asynccontextmanager
async def capture_events(
    rt: Runtime, *, job_id: int | None = None, kinds: Iterable[EventKind] | None = None
) -> AsyncIterator[list[JobEvent]]:
    """Collect events into a list while the block runs (and briefly after, to catch up)."""
    captured: list[JobEvent] = []
    async with rt.events(job_id=job_id, kinds=None if kinds is None else set(kinds)) as events:

        async def collect() -> None:
            async for event in events:
                captured.append(event)  # noqa: PERF401 -- visible to the caller as it grows

        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            yield captured
            # Let events written just before the block ended arrive: wait for a quiet spell.
            with anyio.move_on_after(5.0):
                while True:
                    seen = len(captured)
                    await anyio.sleep(max(0.1, rt.store.poll_interval * 2))
                    if len(captured) == seen:
                        break
            tg.cancel_scope.cancel()


__all__ = ["capture_events", "rescue", "run_job", "run_until_final", "runtime"]
