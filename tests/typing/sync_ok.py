"""Type-checked (not run) by tests/typing/test_sync_types.py: what mypy infers for users of
`SyncClient`.
"""

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
    return Page(title=req.url)


def use(client: bj.SyncClient) -> None:
    handle = client.enqueue(scrape, Req(url="x"))
    assert_type(handle, bj.JobHandle[Page])
    page = client.result(handle, timeout=1)
    assert_type(page, Page)
    assert_type(client.result(handle.id, definition=scrape), Page)
    assert_type(client.result(handle.id), Any)
    by_name = client.enqueue("scrape", {"url": "x"})
    assert_type(by_name, bj.JobHandle[Any])
    many = client.enqueue_many(scrape, [Req(url="a")])
    assert_type(many, list[bj.JobHandle[Page]])
    assert_type(client.get(handle).status, bj.JobStatus)
    assert_type(client.cancel(handle.id), bj.JobStatus)
    assert_type(client.retry(handle), bj.JobHandle[Any])
    assert_type(client.list(status="queued"), bj.JobPage)
    assert_type(client.call(lambda rt: rt.stats()), bj.Stats)


def in_a_block(url: str) -> str:
    with bj.SyncClient(url, jobs=[scrape]) as client:
        return client.result(client.enqueue(scrape, {"url": url})).title
