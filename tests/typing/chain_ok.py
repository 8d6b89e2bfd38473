"""Must type-check: a chain whose links fit, and a group whose callback takes its
members' outputs; the results are the last steps' output models."""

from __future__ import annotations

from pydantic import BaseModel

import brains_jobs as bj


class Url(BaseModel):
    url: str


class Page(BaseModel):
    text: str


class Words(BaseModel):
    count: int


class Total(BaseModel):
    count: int


@bj.job("fetch")
async def fetch(ctx: bj.JobContext, inp: Url) -> Page:
    return Page(text=inp.url)


@bj.job("count")
async def count(ctx: bj.JobContext, inp: Page) -> Words:
    return Words(count=len(inp.text.split()))


@bj.job("total")
async def total(ctx: bj.JobContext, inp: bj.GroupResults[Words]) -> Total:
    return Total(count=sum(w.count for w in inp.succeeded()))


async def use(rt: bj.Runtime) -> None:
    flow = await rt.chain(fetch.bind(Url(url="x")), count)
    words: Words = await flow.result()
    group = await rt.group([count.bind(Page(text="a b"))], then=total)
    summed: Total = await group.result()
    print(words, summed)
