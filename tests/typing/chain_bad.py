"""Must NOT type-check: a chain step whose input model is not the previous step's
output model."""

from __future__ import annotations

from pydantic import BaseModel

import brains_jobs as bj


class Url(BaseModel):
    url: str


class Page(BaseModel):
    text: str


class Words(BaseModel):
    count: int


@bj.job("fetch")
async def fetch(ctx: bj.JobContext, inp: Url) -> Page:
    return Page(text=inp.url)


@bj.job("count")
async def count(ctx: bj.JobContext, inp: Page) -> Words:
    return Words(count=len(inp.text.split()))


async def use(rt: bj.Runtime) -> None:
    await rt.chain(count.bind(Page(text="x")), fetch)  # fetch takes a Url, not Words
