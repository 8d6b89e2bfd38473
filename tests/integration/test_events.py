"""Events: the audit trail, live subscribers, slow subscribers, plugin subscribers."""

from __future__ import annotations

import anyio
import pytest

import brains_jobs as bj
from brains_jobs.testing import capture_events
from tests.integration.conftest import running_worker
from tests.support import jobs

pytestmark = pytest.mark.anyio

S = bj.JobStatus


async def test_in_process_subscriber_sees_every_event_in_order(rt: bj.Runtime) -> None:
    async with capture_events(rt) as seen:
        handle = await rt.enqueue(jobs.sleep, {"seconds": 0.05, "ledger": False})
        async with running_worker(rt):
            await handle.result(timeout=10)
    mine = [e for e in seen if e.job_id == handle.id]
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)
    assert [(e.kind, e.status) for e in mine if e.kind is bj.EventKind.STATUS] == [
        (bj.EventKind.STATUS, S.QUEUED),
        (bj.EventKind.STATUS, S.RUNNING),
        (bj.EventKind.STATUS, S.SUCCEEDED),
    ]
    progress = [e.progress for e in mine if e.kind is bj.EventKind.PROGRESS]
    assert progress == [0.2, 0.4, 0.6, 0.8, 1.0]
    kinds = [e.kind for e in mine]
    assert kinds.index(bj.EventKind.PROGRESS) > 1 and kinds[-1] is bj.EventKind.STATUS
    assert all(e.job_type == "sleep" for e in mine)


async def test_handle_events_replays_history_then_follows(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.flaky, {"fail_times": 1})
    async with running_worker(rt):
        await handle.result(timeout=10)
    statuses = []
    async for event in handle.events():
        if event.kind is bj.EventKind.STATUS:
            statuses.append((event.status, event.attempt))
            if event.status is S.SUCCEEDED:
                break
    assert statuses == [
        (S.QUEUED, 0),
        (S.RUNNING, 1),
        (S.QUEUED, 1),
        (S.RUNNING, 2),
        (S.SUCCEEDED, 2),
    ]


async def test_filters_by_type_and_kind(rt: bj.Runtime) -> None:
    async with capture_events(rt, kinds=[bj.EventKind.PROGRESS]) as progress:
        async with rt.events(types={"add"}) as adds:
            a = await rt.enqueue(jobs.add, {"a": 1})
            await rt.enqueue(jobs.noop, {"a": 1})
            await rt.run_worker(burst=True)
            got = []
            with anyio.fail_after(5):
                async for event in adds:
                    got.append(event)
                    if event.status is S.SUCCEEDED:
                        break
    assert {e.job_type for e in got} == {"add"}
    assert {e.kind for e in progress} == {bj.EventKind.PROGRESS}
    assert [e.job_id for e in progress] == [a.id]


async def test_slow_subscriber_is_told_it_missed_events_and_never_blocks(rt: bj.Runtime) -> None:
    async with rt.events(buffer=3) as slow:
        events = aiter(slow)
        handles = await rt.enqueue_many(jobs.add, [{"a": i} for i in range(20)])
        received = [await anext(events)]
        worker = await rt.run_worker(burst=True)  # finishes although nobody reads `slow`
        assert worker.processed == 20
        assert [(await h.get()).status for h in handles] == [S.SUCCEEDED] * 20
        with anyio.move_on_after(1):
            async for event in events:
                received.append(event)
    dropped = [e for e in received if e.kind is bj.EventKind.DROPPED]
    assert dropped, "the slow subscriber was not told"
    missed = dropped[0].data or {}
    assert missed["missed"] > 0 and missed["first_seq"] <= missed["last_seq"]
    real = [e for e in received if e.kind is not bj.EventKind.DROPPED]
    assert [e.seq for e in real] == sorted(e.seq for e in real)


async def test_another_runtime_on_the_same_database_follows_events(
    rt: bj.Runtime, database_url: str, tmp_path
) -> None:
    async with bj.Runtime(database_url, load_entrypoints=False, artifacts=str(tmp_path)) as watcher:
        handle = await rt.enqueue(jobs.sleep, {"seconds": 0.1, "ledger": False})
        async with running_worker(rt):
            seen = []
            with anyio.fail_after(10):
                async for event in watcher.events(job_id=handle.id, after=0):
                    seen.append(event)
                    if event.status is S.SUCCEEDED:
                        break
    statuses = [e.status for e in seen if e.kind is bj.EventKind.STATUS]
    assert statuses == [S.QUEUED, S.RUNNING, S.SUCCEEDED]
    assert len([e for e in seen if e.kind is bj.EventKind.PROGRESS]) == 5


async def test_plugin_subscriber_receives_events(database_url: str, tmp_path) -> None:
    import brains_jobs_testplugin as plugin

    plugin.SEEN.clear()
    async with bj.Runtime(
        database_url, plugins=[plugin], load_entrypoints=False, artifacts=str(tmp_path)
    ) as rt:
        handle = await rt.enqueue("testplugin.greet", {"name": "ada"})
        await rt.run_worker(burst=True)
        assert (await handle.result(timeout=5)).text == "hello, ada"
        with anyio.fail_after(5):
            while not any(e.status is S.SUCCEEDED for e in plugin.SEEN):
                await anyio.sleep(0.01)
    assert [e.status for e in plugin.SEEN if e.kind is bj.EventKind.STATUS] == [
        S.QUEUED,
        S.RUNNING,
        S.SUCCEEDED,
    ]


async def test_failing_plugin_subscriber_is_logged_not_raised(
    database_url: str, tmp_path, caplog
) -> None:
    class Plugin:
        @bj.hookimpl
        def brains_jobs_register_subscribers(self, register) -> None:
            async def explode(event: bj.JobEvent) -> None:
                raise ValueError("subscriber bug")

            register("explode", explode)

    async with bj.Runtime(
        database_url,
        plugins=[Plugin()],
        jobs=[jobs.add],
        load_entrypoints=False,
        artifacts=str(tmp_path),
    ) as rt:
        handle = await rt.enqueue(jobs.add, {"a": 1})
        await rt.run_worker(burst=True)
        assert (await handle.result(timeout=5)).total == 1
        with anyio.fail_after(5):
            while "subscriber bug" not in caplog.text:
                await anyio.sleep(0.01)
    assert "event subscriber" in caplog.text


async def test_log_lines_are_kept_with_the_job(rt: bj.Runtime) -> None:
    handle = await rt.enqueue(jobs.chain, {"a": 1, "b": 1})
    await rt.run_worker(burst=True)
    logs = [
        e for e in await rt.store.events_after(0, job_id=handle.id) if e.kind is bj.EventKind.LOG
    ]
    assert len(logs) == 1 and logs[0].data == {"level": "info"}
