"""A host application that embeds the runtime: two job types, enqueued and run in one process.

Shows:
- defining job types with `@bj.job` (input and output models come from the annotations);
- enqueueing by definition (typed handle) and by name (validated, untyped handle);
- rejected input (`InvalidJobInput` names the field);
- running a worker to completion with `rt.run_worker(burst=True)`;
- running a worker in a task group next to the code that waits for results;
- typed results from `await handle.result()`.

Run it:

    python examples/host_app.py

It uses an SQLite file in a temporary directory, or the database given by
`BRAINS_JOBS_DATABASE_URL` (for example `postgresql+asyncpg://user@host/db?schema=demo`).
"""

from __future__ import annotations

import os
import re
import tempfile
from decimal import Decimal

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj

# -- job types ------------------------------------------------------------------------


class Title(BaseModel):
    text: str = Field(min_length=1)


class Slug(BaseModel):
    slug: str


@bj.job("example.slugify", max_attempts=1)
async def slugify(ctx: bj.JobContext, inp: Title) -> Slug:
    """Turn a title into a URL slug."""
    words = re.findall(r"[a-z0-9]+", inp.text.lower())
    return Slug(slug="-".join(words))


class Line(BaseModel):
    item: str
    quantity: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0)


class Invoice(BaseModel):
    number: str
    lines: list[Line] = Field(min_length=1)


class InvoiceTotal(BaseModel):
    number: str
    total: Decimal


@bj.job("example.invoice-total", max_attempts=3, backoff=0.1, timeout=10, queue="billing")
async def invoice_total(ctx: bj.JobContext, inp: Invoice) -> InvoiceTotal:
    """Add up an invoice, one line at a time, reporting progress."""
    total = Decimal(0)
    for i, line in enumerate(inp.lines, 1):
        total += line.quantity * line.unit_price
        await ctx.progress(i / len(inp.lines), f"line {i}/{len(inp.lines)}")
    return InvoiceTotal(number=inp.number, total=total)


# -- the application ------------------------------------------------------------------


async def main(url: str, artifacts: str) -> None:
    # `jobs=` registers job types given in code; `load_entrypoints=False` keeps installed
    # plugins out, so that this example does the same wherever it runs.
    async with bj.Runtime(
        url, jobs=[slugify, invoice_total], load_entrypoints=False, artifacts=artifacts
    ) as rt:
        # By definition: the handle is a JobHandle[Slug], the input is checked now.
        slug_handle = await rt.enqueue(slugify, Title(text="Hello, brains-jobs!"))
        # By name, with a plain dict: validated against the input model all the same.
        invoice_handle = await rt.enqueue(
            "example.invoice-total",
            {
                "number": "2024-001",
                "lines": [
                    {"item": "tea", "quantity": 3, "unit_price": "4.50"},
                    {"item": "cake", "quantity": 1, "unit_price": "29.00"},
                ],
            },
        )

        # Bad input never reaches the database.
        try:
            await rt.enqueue(invoice_total, {"number": "2024-002", "lines": []})
        except bj.InvalidJobInput as exc:
            print(f"rejected: {exc} (fields: {exc.fields})")

        # Run every queued job, then return.
        worker = await rt.run_worker(concurrency=4, burst=True)
        print(f"worker processed {worker.processed} job(s)")

        slug: Slug = await slug_handle.result()
        print(f"slug: {slug.slug}")
        total = await invoice_handle.result()  # an InvoiceTotal, parsed by its type name
        print(f"invoice {total.number} total: {total.total:.2f}")

        # A worker in a task group, running while this code waits for a result.
        worker = rt.worker(concurrency=2, shutdown_timeout=5)
        async with anyio.create_task_group() as tg:
            await tg.start(worker.run)
            handle = await rt.enqueue(slugify, {"text": "Workers in task groups"})
            print(f"slug from the background worker: {(await handle.result(timeout=10)).slug}")
            worker.stop()  # stop claiming; the task group waits until it has stopped

        job = await rt.get(invoice_handle.id)
        print(f"job #{job.id} {job.type}: {job.status.value} after {job.attempts} attempt(s)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/jobs.db"
        anyio.run(main, url, os.path.join(tmp, "artifacts"))
