"""Dependencies and workflows on each store: jobs that wait for others, chains that pass
typed outputs, groups whose callback runs once, skips that cascade, and the safety net.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.store import Outcome
from tests.integration.conftest import running_worker, wait_for_status
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


class Url(BaseModel):
    url: str


class Page(BaseModel):
    url: str
    words: int


class Parsed(BaseModel):
    title: str


class Stored(BaseModel):
    where: str


class Chunk(BaseModel):
    text: str


class Vector(BaseModel):
    length: int


class Summary(BaseModel):
    total: int
    failed: int


@bj.job("wf.fetch", max_attempts=1)
async def fetch(ctx: bj.JobContext, inp: Url) -> Page:
    """Fetches (pretends to), or fails for a URL that says so."""
    if "fail" in inp.url:
        raise bj.PermanentError(f"cannot fetch {inp.url}")
    return Page(url=inp.url, words=len(inp.url))


@bj.job("wf.parse", max_attempts=1)
async def parse(ctx: bj.JobContext, inp: Page) -> Parsed:
    """Takes the fetched page."""
    return Parsed(title=f"{inp.url} ({inp.words} words)")


@bj.job("wf.store", max_attempts=1)
async def store(ctx: bj.JobContext, inp: Parsed) -> Stored:
    """Takes the parsed page."""
    return Stored(where=f"db:{inp.title}")


@bj.job("wf.embed", max_attempts=1)
async def embed(ctx: bj.JobContext, inp: Chunk) -> Vector:
    """Embeds a chunk (its length), or fails on one that says so."""
    if inp.text == "fail":
        raise bj.PermanentError("bad chunk")
    return Vector(length=len(inp.text))


@bj.job("wf.summarize", max_attempts=1)
async def summarize(ctx: bj.JobContext, inp: bj.GroupResults[Vector]) -> Summary:
    """Sums what the group made."""
    done = inp.succeeded()
    return Summary(total=sum(v.length for v in done), failed=len(inp.results) - len(done))


class After(BaseModel):
    parent: int


@bj.job("wf.after", max_attempts=1)
async def after(ctx: bj.JobContext, inp: After) -> Page:
    """Reads its parent's output through its context."""
    page = await ctx.parent_output(ctx.handle(fetch, inp.parent))
    return Page(url=page.url + "#after", words=page.words)


ALL = [fetch, parse, store, embed, summarize, after]


@pytest.fixture
async def wrt(database_url: str, tmp_path: Path) -> AsyncIterator[bj.Runtime]:
    async with bj.Runtime(
        database_url,
        jobs=[*jobs.ALL, *ALL],
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
        lease=5.0,
    ) as rt:
        yield rt


async def test_a_dependent_waits_and_then_runs(wrt: bj.Runtime) -> None:
    a = await wrt.enqueue(fetch, {"url": "a"})
    b = await wrt.enqueue(jobs.add, {"a": 1}, depends_on=[a])
    assert (await b.get()).status is S.WAITING
    async with running_worker(wrt):
        assert (await b.result(timeout=10)).total == 1
    history = [e.status for e in await wrt.store.events_after(0, job_id=b.id) if e.status]
    assert history[:2] == [S.WAITING, S.QUEUED]


async def test_a_three_level_graph_runs_in_order_and_failure_skips_transitively(
    wrt: bj.Runtime,
) -> None:
    root = await wrt.enqueue(fetch, {"url": "fail"})
    ok = await wrt.enqueue(fetch, {"url": "fine"})
    mid = await wrt.enqueue(jobs.add, {"a": 1}, depends_on=[root, ok])
    leaf = await wrt.enqueue(jobs.add, {"a": 2}, depends_on=[mid])
    runs = await wrt.enqueue(jobs.add, {"a": 3}, depends_on=[root], on_parent_failure="run")
    async with running_worker(wrt):
        assert (await runs.result(timeout=10)).total == 3
        with pytest.raises(bj.JobCancelled):
            await leaf.result(timeout=10)
    assert (await mid.get()).status is S.SKIPPED
    assert (await leaf.get()).last_error is None
    assert (await leaf.get()).status is S.SKIPPED
    message = [e.message for e in await wrt.store.events_after(0, job_id=leaf.id)][-1]
    assert message == f"skipped: parent job {mid.id} ended skipped"


async def test_a_parent_already_final_decides_at_once(wrt: bj.Runtime) -> None:
    done = await wrt.enqueue(fetch, {"url": "x"})
    failed = await wrt.enqueue(fetch, {"url": "fail"})
    await wrt.run_worker(burst=True, maintenance=False)
    queued = await wrt.enqueue(jobs.add, {"a": 1}, depends_on=[done])
    skipped = await wrt.enqueue(jobs.add, {"a": 1}, depends_on=[done, failed])
    assert (await queued.get()).status is S.QUEUED
    assert (await skipped.get()).status is S.SKIPPED
    with pytest.raises(bj.InvalidJobOption, match="no job with id 999"):
        await wrt.enqueue(jobs.add, {"a": 1}, depends_on=[done, 999])
    assert len((await wrt.list()).jobs) == 4


async def test_a_chain_passes_typed_outputs(wrt: bj.Runtime) -> None:
    flow = await wrt.chain(fetch.bind(Url(url="http://x")), parse, store)
    async with running_worker(wrt):
        result = await flow.result(timeout=10)
    assert result == Stored(where="db:http://x (8 words)")
    steps = (await wrt.list()).jobs
    assert [j.status for j in steps] == [S.SUCCEEDED] * 3


async def test_a_failed_step_skips_the_rest_of_its_chain(wrt: bj.Runtime) -> None:
    steps = await wrt.chain_steps(fetch.bind({"url": "fail"}), parse, store)
    async with running_worker(wrt):
        with pytest.raises(bj.JobCancelled):
            await steps[-1].result(timeout=10)
    assert [await s.status() for s in steps] == [S.FAILED, S.SKIPPED, S.SKIPPED]
    # A skipped step never got its input: it cannot simply run again.
    with pytest.raises(bj.InvalidJobState, match="takes its input from the jobs it waited for"):
        await wrt.retry(steps[1].id)


async def test_a_groups_callback_runs_once_with_every_output(wrt: bj.Runtime) -> None:
    chunks = ["a", "bb", "ccc", "dddd"]
    group = await wrt.group([embed.bind(Chunk(text=c)) for c in chunks], then=summarize)
    assert await group.status() is S.QUEUED
    async with running_worker(wrt):
        assert await group.result(timeout=10) == Summary(total=10, failed=0)
    assert await group.progress() == 1.0
    callback = await group.callback.get()  # type: ignore[union-attr]
    assert callback.attempts == 1
    assert callback.input["ids"] == [m.id for m in group.members]


async def test_a_group_can_run_its_callback_despite_failures(wrt: bj.Runtime) -> None:
    skipping = await wrt.group(
        [embed.bind({"text": "fail"}), embed.bind({"text": "ok"})], then=summarize
    )
    running = await wrt.group(
        [embed.bind({"text": "fail"}), embed.bind({"text": "ok"})],
        then=summarize,
        on_member_failure="run",
    )
    async with running_worker(wrt):
        assert await running.result(timeout=10) == Summary(total=2, failed=1)
        with pytest.raises(bj.JobCancelled):
            await skipping.result(timeout=10)


async def test_a_dependent_reads_its_parents_output(wrt: bj.Runtime) -> None:
    parent = await wrt.enqueue(fetch, {"url": "p"})
    child = await wrt.enqueue(after, {"parent": parent.id}, depends_on=[parent])
    async with running_worker(wrt):
        assert (await child.result(timeout=10)).url == "p#after"


async def test_pruning_keeps_a_parent_that_a_waiting_job_needs(wrt: bj.Runtime) -> None:
    parent = await wrt.enqueue(fetch, {"url": "x"})
    await wrt.run_worker(burst=True, maintenance=False)
    blocker = await wrt.enqueue(jobs.sleep, {"seconds": 60, "ledger": False}, delay=60)
    waiting = await wrt.enqueue(jobs.add, {"a": 1}, depends_on=[parent, blocker])
    assert (await waiting.get()).status is S.WAITING
    assert await wrt.prune(0) == []
    assert await wrt.cancel(blocker.id) is S.CANCELLED
    assert (await waiting.get()).status is S.SKIPPED
    assert sorted(await wrt.prune(0)) == sorted([parent.id, blocker.id, waiting.id])


async def test_the_promoter_settles_a_dependent_that_a_resolution_missed(
    wrt: bj.Runtime,
) -> None:
    parent = await wrt.enqueue(jobs.add, {"a": 1})
    (claimed,) = await wrt.store.claim(worker_id="w", queues=None, types=["add"], limit=1, lease=30)
    # Enqueued after its parent was claimed: the worker's outcome does not know.
    child = await wrt.enqueue(jobs.add, {"a": 2}, depends_on=[parent])
    done = Outcome(parent.id, claimed.lease_token, S.SUCCEEDED, output='{"total": 1}')
    assert await wrt.store.finish([done]) == []
    await wrt.store.sweep_waiting(0.0, 100)
    assert (await child.get()).status is S.QUEUED


async def test_a_dependent_enqueued_in_the_hosts_transaction_is_linked(
    wrt: bj.Runtime,
) -> None:
    parent = await wrt.enqueue(jobs.add, {"a": 1}, delay=3600)
    engine = wrt.store.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn, conn.begin():
        child = await wrt.enqueue(jobs.add, {"a": 2}, depends_on=[parent], connection=conn)
    assert (await wrt.get(child.id)).status is bj.JobStatus.WAITING
    async with engine.connect() as conn:
        transaction = await conn.begin()
        dropped = await wrt.enqueue(jobs.add, {"a": 3}, depends_on=[parent], connection=conn)
        await transaction.rollback()
    with pytest.raises(bj.JobNotFound):
        await wrt.get(dropped.id)
    await wrt.cancel(parent.id)
    assert (await wrt.get(child.id)).status is bj.JobStatus.SKIPPED


async def test_a_dependent_enqueued_while_its_parent_runs_follows_it(wrt: bj.Runtime) -> None:
    """The claim did not know of the dependent; the finish still resolves it (no
    maintenance runs here, so the promoter cannot be what queues it).
    """
    parent = await wrt.enqueue(jobs.sleep, {"seconds": 0.5, "ledger": False})
    async with running_worker(wrt):
        await wait_for_status(wrt, parent.id, S.RUNNING)
        child = await wrt.enqueue(jobs.add, {"a": 7}, depends_on=[parent])
        assert (await child.get()).status is S.WAITING
        assert (await child.result(timeout=10)).total == 7


async def test_a_step_with_a_unique_key_must_be_new(wrt: bj.Runtime) -> None:
    held = await wrt.enqueue(jobs.add, {"a": 1}, unique_key="k", delay=60)
    with pytest.raises(bj.InvalidJobOption, match="on_conflict='reject'"):
        await wrt.chain(jobs.add.bind({"a": 2}, unique_key="k"))
    with pytest.raises(bj.DuplicateJob, match=f"held by job {held.id}"):
        await wrt.group(
            [jobs.add.bind({"a": 2}), jobs.add.bind({"a": 3}, unique_key="k", on_conflict="reject")]
        )
    assert [j.id for j in (await wrt.list()).jobs] == [held.id]
