"""Must NOT type-check: the result of a typed handle is the output model, nothing else."""

from __future__ import annotations

from pydantic import BaseModel

import brains_jobs as bj


class Req(BaseModel):
    url: str


class Page(BaseModel):
    title: str


@bj.job("scrape")
async def scrape(ctx: bj.JobContext, req: Req) -> Page:
    return Page(title=req.url)


async def use(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(scrape, Req(url="x"))
    page: Req = await handle.result()  # wrong model
    print(page)
