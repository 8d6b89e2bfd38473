"""Type-checked (not run) by tests/typing/test_types.py: what mypy infers for users."""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel

import brains_jobs as bj


class Req(BaseModel):
    url: str


class Page(BaseModel):
    title: str


@bj.job("scrape")
async def scrape(ctx: bj.JobContext, req: Req) -> Page:
    await ctx.progress(0.5, "half")
    return Page(title=req.url)


async def use(rt: bj.Runtime) -> None:
    assert_type(scrape, bj.JobDefinition[Req, Page])
    handle = await rt.enqueue(scrape, Req(url="x"))
    assert_type(handle, bj.JobHandle[Page])
    page = await handle.result(timeout=1)
    assert_type(page, Page)
    by_name = await rt.enqueue("scrape", {"url": "x"})
    assert_type(by_name, bj.JobHandle[Any])
    many = await rt.enqueue_many(scrape, [Req(url="a")])
    assert_type(many, list[bj.JobHandle[Page]])
    job = await rt.get(handle.id)
    assert_type(job.status, bj.JobStatus)
