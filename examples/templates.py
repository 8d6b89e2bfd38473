"""Job templates: named presets of a job, saved once in the database, enqueued by name.

Shows:
- saving templates with `rt.save_template` (job type, input defaults, queue, priority,
  tags), checked when saved;
- listing them with their job types;
- enqueueing with `rt.enqueue_template`: input overrides laid over the defaults, and
  options given at the call winning over the template's;
- the merged input validated at enqueue (`InvalidJobInput` names the missing field), and
  an unknown name (`TemplateNotFound`);
- replacing and deleting a template.

Run it:

    python examples/templates.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import tempfile

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj

# -- a job type ------------------------------------------------------------------------


class Notice(BaseModel):
    channel: str = Field(pattern="^(email|pager|chat)$")
    recipient: str
    message: str = Field(min_length=1)
    urgent: bool = False


class Sent(BaseModel):
    text: str


@bj.job("example.notify", max_attempts=2, queue="notices")
async def notify(ctx: bj.JobContext, notice: Notice) -> Sent:
    """Send a notice (here: describe it)."""
    flag = "[URGENT] " if notice.urgent else ""
    return Sent(text=f"{notice.channel} to {notice.recipient}: {flag}{notice.message}")


# -- the application ------------------------------------------------------------------


async def main(url: str, artifacts: str) -> None:
    async with bj.Runtime(url, jobs=[notify], load_entrypoints=False, artifacts=artifacts) as rt:
        # Presets: the input fields they fix, and where and how their jobs run.
        await rt.save_template(
            "oncall-page",
            notify,
            {"channel": "pager", "urgent": True},
            queue="alerts",
            priority=10,
            tags=["oncall"],
        )
        await rt.save_template("weekly-digest", "example.notify", {"channel": "email"})
        for info in await rt.templates():
            print(f"template {info.name}: {info.type} input={info.input} options={info.options}")

        # Enqueue by name, giving only what changes.
        page = await rt.enqueue_template(
            "oncall-page", {"recipient": "alice", "message": "disk full"}
        )
        digest = await rt.enqueue_template(
            "weekly-digest", {"recipient": "bob", "message": "7 new reports"}, tags=["weekly"]
        )
        for handle, name in ((page, "oncall-page"), (digest, "weekly-digest")):
            job = await rt.get(handle.id)
            print(
                f"job #{job.id} from {name}: queue={job.queue} priority={job.priority}"
                f" tags={job.tags}"
            )

        # The merged input is validated like any input; unknown names are named.
        try:
            await rt.enqueue_template("oncall-page", {"recipient": "carol"})
        except bj.InvalidJobInput as exc:
            print(f"rejected: {exc}")
        try:
            await rt.enqueue_template("nope")
        except bj.TemplateNotFound as exc:
            print(f"rejected: {exc}")

        # Saving under the same name replaces the template.
        updated = await rt.save_template(
            "oncall-page", notify, {"channel": "chat", "urgent": True}, queue="alerts"
        )
        print(f"replaced oncall-page: input={updated.input} options={updated.options}")

        await rt.run_worker(burst=True)
        for handle in (page, digest):
            print((await handle.result()).text)

        await rt.delete_template("weekly-digest")
        print(f"left: {[t.name for t in await rt.templates()]}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
