"""A plugin given in code: it registers a job type and an event subscriber through hooks.

A plugin is any object or module with functions marked `@bj.hookimpl` whose names are
hooks of `brains_jobs.plugins.hookspecs`. An installed distribution points an entry point
of group `brains_jobs` at such a module; here the plugin is an object handed to
`Runtime(plugins=[...])`, with entry points switched off (`load_entrypoints=False`).

Shows:
- `brains_jobs_register_jobs`: `register(definition)` for each job type;
- `brains_jobs_register_subscribers`: `register(name, async_callback, types=..., kinds=...)`;
  the subscriber is called with every matching event, in order, while the runtime is open;
- which plugin owns a job type (`rt.registry.owner(name)`).

Run it:

    python examples/plugin_in_code.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL`.
"""

from __future__ import annotations

import os
import tempfile

import anyio
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.plugins.hookspecs import RegisterSubscriber


class Greeting(BaseModel):
    name: str
    shout: bool = False


class Greeted(BaseModel):
    text: str


@bj.job("example.greet", max_attempts=2, backoff=0.05)
async def greet(ctx: bj.JobContext, inp: Greeting) -> Greeted:
    """Greet someone; the first attempt of a shouted greeting fails, to show a retry."""
    if inp.shout and ctx.attempt == 1:
        raise ConnectionError("the megaphone is warming up")
    text = f"hello, {inp.name}"
    return Greeted(text=text.upper() if inp.shout else text)


class AuditPlugin:
    """Registers `example.greet` and keeps every status change of its jobs."""

    def __init__(self) -> None:
        self.history: dict[int, list[str]] = {}
        self.finished = anyio.Event()
        self.expected = 0

    @bj.hookimpl
    def brains_jobs_register_jobs(self, register: bj.Register) -> None:
        register(greet)

    @bj.hookimpl
    def brains_jobs_register_subscribers(self, register: RegisterSubscriber) -> None:
        register(
            "audit", self.on_status, types={"example.greet"}, kinds={bj.EventKind.STATUS}
        )

    async def on_status(self, event: bj.JobEvent) -> None:
        # Subscribers run on the runtime's event bus, never inside the worker: a slow or
        # failing subscriber cannot hold up or break a job. Errors raised here are logged.
        assert event.status is not None
        self.history.setdefault(event.job_id, []).append(event.status.value)
        done = [h for h in self.history.values() if h[-1] in ("succeeded", "failed")]
        if self.expected and len(done) >= self.expected:
            self.finished.set()


async def main(url: str, artifacts: str) -> None:
    plugin = AuditPlugin()
    async with bj.Runtime(
        url, plugins=[plugin], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        print(f"job types: {rt.registry.names()}, owner: {rt.registry.owner('example.greet')}")
        handles = [
            await rt.enqueue("example.greet", {"name": "ada"}),
            await rt.enqueue(greet, Greeting(name="grace", shout=True)),
        ]
        plugin.expected = len(handles)
        await rt.run_worker(burst=True)
        for handle in handles:
            print(f"job #{handle.id}: {(await handle.result()).text}")
        # The subscriber follows the event table on its own schedule: wait until it has
        # seen the final events before closing the runtime.
        with anyio.fail_after(10):
            await plugin.finished.wait()
    for job_id, statuses in sorted(plugin.history.items()):
        print(f"plugin subscriber saw job #{job_id}: {' -> '.join(statuses)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
