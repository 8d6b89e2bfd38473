"""Must NOT type-check: `SyncClient.result` of a typed handle is the output model."""

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


def use(client: bj.SyncClient) -> None:
    handle = client.enqueue(scrape, Req(url="x"))
    page: Req = client.result(handle)  # wrong model
    print(page)
