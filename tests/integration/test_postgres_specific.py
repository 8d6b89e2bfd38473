"""What only the PostgreSQL store does: NOTIFY wake-ups across runtimes, transactional
enqueue on the host's connection, reconnects, the database clock, the claim's and the
result batch's plans,
events committed out of order, and concurrent migrations.

Every runtime here polls once a minute at most, so anything that happens within the
tests' few seconds was woken by a notification.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

import brains_jobs as bj
from brains_jobs import testing
from brains_jobs.store import NewJob, Outcome, migrations
from brains_jobs.store.postgres import PostgresStore
from tests.conftest import PG_DSN, pg_url
from tests.integration import conftest
from tests.support import jobs
from tests.support.postgres import admin

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

S = bj.JobStatus
NO_POLL = 60.0  # seconds: far beyond every timeout below


@pytest.fixture
def url(pg_schema: str) -> str:
    return pg_url(pg_schema)


@contextlib.asynccontextmanager
async def runtime(url: str, tmp_path: Path, **options: Any) -> AsyncIterator[bj.Runtime]:
    """A runtime whose store only polls once a minute."""
    async with bj.Runtime(
        url,
        jobs=jobs.ALL,
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
        **options,
    ) as rt:
        rt.store.poll_interval = NO_POLL
        yield rt


@contextlib.asynccontextmanager
async def running_worker(rt: bj.Runtime, **options: Any) -> AsyncIterator[bj.Worker]:
    """The suite's background worker, stopped promptly despite the minute-long poll.

    `Worker.stop()` wakes the worker through a plain Signal, which is lost if the worker
    is between two waits (reading `next_ready`); the store's work signal keeps a
    notification for its next wait, so one more makes the stop land.
    """
    async with conftest.running_worker(rt, **options) as worker:
        try:
            yield worker
        finally:
            worker.stop()
            rt.store.work_signal.notify()


async def backends(schema: str, role: str) -> list[int]:
    async with admin() as conn:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            f"brains_jobs {role} {schema}"[:63],
        )
    return [r[0] for r in rows]


async def terminate(pids: list[int]) -> None:
    async with admin() as conn:
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)


async def test_another_runtimes_enqueue_wakes_an_idle_worker(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt_worker, runtime(url, tmp_path) as rt_client:
        async with running_worker(rt_worker):
            await anyio.sleep(0.2)  # the worker has found the queue empty and waits
            started = time.monotonic()
            handle = await rt_client.enqueue(jobs.add, {"a": 2, "b": 3})
            assert (await handle.result(timeout=5)).total == 5
            assert time.monotonic() - started < 2


async def test_events_reach_another_runtime_in_order(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt_worker, runtime(url, tmp_path) as rt_client:
        async with running_worker(rt_worker):
            seen: list[tuple[str, str | None]] = []
            with anyio.fail_after(5):
                async with rt_client.events() as events:
                    handle = await rt_client.enqueue(jobs.add, {"a": 1})
                    async for event in events:
                        assert event.job_id == handle.id
                        status = event.status.value if event.status else None
                        seen.append((event.kind.value, status))
                        if event.status is S.SUCCEEDED:
                            break
    assert seen == [
        ("status", "queued"),
        ("status", "running"),
        ("progress", None),
        ("status", "succeeded"),
    ]


async def test_transactional_enqueue_exists_only_if_the_host_commits(
    url: str, tmp_path: Path
) -> None:
    # The host's own engine: default search_path, nothing set up by the store.
    engine = create_async_engine(PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with runtime(url, tmp_path) as rt_worker, runtime(url, tmp_path) as rt_client:
            async with running_worker(rt_worker) as worker:
                async with engine.connect() as conn:
                    transaction = await conn.begin()
                    dropped = await rt_client.enqueue(jobs.add, {"a": 1}, connection=conn)
                    await transaction.rollback()
                with pytest.raises(bj.JobNotFound):
                    await rt_client.get(dropped.id)

                async with engine.connect() as conn, conn.begin():
                    kept = await rt_client.enqueue_many(
                        jobs.add, [{"a": 1, "b": 1}, {"a": 2, "b": 2}], connection=conn
                    )
                    await anyio.sleep(0.3)
                    assert worker.processed == 0  # not visible before the commit
                committed = time.monotonic()
                results = [await h.result(timeout=5) for h in kept]
                assert [r.total for r in results] == [2, 4]
                assert time.monotonic() - committed < 2  # NOTIFY delivered at commit
            history = await rt_client.store.events_after(0, job_id=kept[0].id)
            assert [e.status for e in history if e.kind is bj.EventKind.STATUS] == [
                S.QUEUED,
                S.RUNNING,
                S.SUCCEEDED,
            ]
    finally:
        await engine.dispose()


async def test_listener_reconnects_and_catches_up(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime(url, tmp_path) as rt_worker, runtime(url, tmp_path) as rt_client:
        store = rt_worker.store
        assert isinstance(store, PostgresStore)
        async with running_worker(rt_worker):
            with anyio.fail_after(5):
                while store.listener_pid is None:  # listening starts with the first wait
                    await anyio.sleep(0.01)
            lost = store.listener_pid
            connect = store._listen_connect

            async def slow_connect() -> asyncpg.Connection:
                await anyio.sleep(0.5)  # long enough for an enqueue to go unheard
                return await connect()

            monkeypatch.setattr(store, "_listen_connect", slow_connect)
            await terminate([lost])
            await anyio.sleep(0.1)
            handle = await rt_client.enqueue(jobs.add, {"a": 7})  # nobody hears this NOTIFY
            assert (await handle.result(timeout=5)).total == 7  # the reconnect caught up
            assert store.listener_pid not in (None, lost)

            started = time.monotonic()
            again = await rt_client.enqueue(jobs.add, {"a": 8})  # heard again
            assert (await again.result(timeout=5)).total == 8
            assert time.monotonic() - started < 2


async def test_a_runtime_that_only_enqueues_does_not_listen(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt:
        await rt.enqueue(jobs.add, {"a": 1})
        assert rt.store.listener_pid is None  # type: ignore[attr-defined]
        async with running_worker(rt):
            with anyio.fail_after(5):
                while rt.store.listener_pid is None:  # type: ignore[attr-defined]
                    await anyio.sleep(0.01)


async def test_pool_recovers_from_terminated_connections(
    url: str, pg_schema: str, tmp_path: Path
) -> None:
    async with runtime(url, tmp_path) as rt:
        handle = await rt.enqueue(jobs.add, {"a": 1})
        await terminate(await backends(pg_schema, "pool"))
        outcomes = []
        for _ in range(5):
            try:
                outcomes.append(await rt.store.pending_count())
            except bj.StoreError as exc:  # never a driver exception
                outcomes.append(exc)
        assert outcomes[-1] == 1
        async with running_worker(rt):
            assert (await handle.result(timeout=5)).total == 1


async def test_times_come_from_the_database_clock(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime(url, tmp_path) as rt:
        store = rt.store
        assert isinstance(store, PostgresStore)
        handle = await rt.enqueue(jobs.add, {"a": 1})
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)  # a worker an hour ahead
        (claimed,) = await store.claim(worker_id="w", queues=None, types=["add"], limit=1, lease=30)
        assert await testing.rescue(rt) == []  # the lease runs on the database clock
        async with store.pool.acquire() as conn:
            left = await conn.fetchval(
                f'SELECT extract(epoch FROM lease_until - now()) FROM "{store.schema}".jobs'
                " WHERE id = $1",
                handle.id,
            )
        assert 28 < left <= 30
        retry = Outcome(
            handle.id,
            claimed.lease_token,
            S.QUEUED,
            retry_in=5.0,
            error={
                "attempt": 1,
                "type": "E",
                "message": "m",
                "traceback": None,
                "at": datetime.now(UTC).isoformat(),
            },
        )
        assert await store.finish([retry]) == []
        ready = await store.next_ready(None, ["add"])
        assert ready is not None
        assert 3 < (ready - datetime.now(UTC)).total_seconds() <= 5  # on this machine's clock


async def test_lease_fencing_rejects_a_lost_attempt(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt:
        store = rt.store
        handle = await rt.enqueue(jobs.add, {"a": 1})
        (first,) = await store.claim(worker_id="a", queues=None, types=["add"], limit=1, lease=0.2)
        assert await testing.rescue(rt) == []
        await anyio.sleep(0.4)
        assert await testing.rescue(rt) == [handle.id]  # not started: back at once
        (second,) = await store.claim(worker_id="b", queues=None, types=["add"], limit=1, lease=30)
        lost, _ = await store.heartbeat([(handle.id, first.lease_token)], 30)
        assert lost == {handle.id}
        late = Outcome(handle.id, first.lease_token, S.SUCCEEDED, output='{"total": 9}')
        assert await store.finish([late]) == [handle.id]
        good = Outcome(handle.id, second.lease_token, S.SUCCEEDED, output='{"total": 1}')
        assert await store.finish([good]) == []
        assert (await rt.get(handle.id)).output == {"total": 1}
        history = [
            (e.kind.value, e.status.value if e.status else None, e.attempt, e.message)
            for e in await store.events_after(0, job_id=handle.id)
        ]
        assert history == [
            ("status", "queued", 0, None),
            ("status", "running", 1, None),
            (
                "status",
                "queued",
                1,
                "worker a stopped before its handler was known to start; attempt given back",
            ),
            ("status", "running", 2, None),
            ("log", None, 0, "late succeeded result rejected: the lease of this attempt was lost"),
            ("status", "succeeded", 2, None),
        ]


async def test_the_claim_walks_the_partial_index(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt:
        store = rt.store
        assert isinstance(store, PostgresStore)
        await store.enqueue(
            [NewJob("add", "default", i % 3, json.dumps({"a": i}), 1) for i in range(3000)]
        )
        claimed = await store.claim(worker_id="w", queues=None, types=["add"], limit=1000, lease=30)
        await store.finish(
            [Outcome(c.id, c.lease_token, S.SUCCEEDED, output="{}") for c in claimed]
        )
        async with store.pool.acquire() as conn:
            await conn.execute(f'ANALYZE "{store.schema}".jobs')
            # The statement as the pool runs it: prepared, with a generic plan.
            await conn.execute(
                "PREPARE claim_probe(text, float8, text, text[], text[], int) AS "
                + store._sql_claim
            )
            try:
                plan = "\n".join(
                    r[0]
                    for r in await conn.fetch(
                        "EXPLAIN (COSTS OFF) EXECUTE claim_probe('t', 30, 'w', '{add}', NULL, 50)"
                    )
                )
            finally:
                await conn.execute("DEALLOCATE claim_probe")
        assert "Index Scan using jobs_ready on jobs" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert "Index Cond: (id = ANY ($" in plan, plan  # ANY(ARRAY(...)), no semi-join


async def test_a_result_batch_reads_only_its_own_rows(url: str, tmp_path: Path) -> None:
    """Statistics taken while nothing ran (as after a bulk enqueue) must not lead
    PostgreSQL to read every running job to write one batch of results.
    """
    async with runtime(url, tmp_path) as rt:
        store = rt.store
        assert isinstance(store, PostgresStore)
        await store.enqueue(
            [NewJob("add", "default", 0, json.dumps({"a": i}), 1) for i in range(3000)]
        )
        async with store.pool.acquire() as conn:
            await conn.execute(f'ANALYZE "{store.schema}".jobs')
        claimed = await store.claim(worker_id="w", queues=None, types=["add"], limit=2000, lease=30)
        batch = claimed[:50]
        async with store.pool.acquire() as conn, conn.transaction():
            # The statement as the pool runs it: prepared, with a generic plan.
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(
                "PREPARE finish_probe(bigint[], text, text) AS " + store._sql_finish_succeeded
            )
            ids = "{" + ",".join(str(c.id) for c in batch) + "}"
            tokens = "{" + ",".join(c.lease_token for c in batch) + "}"
            plan = "\n".join(
                r[0]
                for r in await conn.fetch(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE finish_probe("
                    f"'{ids}', array_to_string('{tokens}'::text[], chr(31)),"
                    f" array_to_string(array_fill('{{}}'::text, ARRAY[{len(batch)}]), chr(31)))"
                )
            )
            await conn.execute("DEALLOCATE finish_probe")
        read = [
            int(line.split("rows=")[1].split()[0]) * int(line.split("loops=")[1].split(")")[0])
            for line in plan.splitlines()
            if "Scan" in line and " on jobs j " in line
        ]
        assert read and sum(read) <= len(batch), plan
        assert "Seq Scan on jobs" not in plan, plan


async def test_events_committed_out_of_order_are_not_skipped(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt:
        store = rt.store
        assert isinstance(store, PostgresStore)
        first = await rt.enqueue(jobs.add, {"a": 1})
        before = await store.last_seq()
        async with admin() as conn:
            transaction = conn.transaction()
            await transaction.start()
            # Takes the next seq for first's `running` event and stays open.
            await conn.fetch(store._sql_claim, "token", 30.0, "w", ["add"], None, 1)
            second = await rt.enqueue(jobs.add, {"a": 2})  # commits a later seq first
            assert await store.last_seq() == before
            assert [e.seq for e in await store.events_after(before)] == []
            await transaction.commit()
        after = await store.events_after(before)
        assert [(e.job_id, e.status) for e in after] == [
            (first.id, S.RUNNING),
            (second.id, S.QUEUED),
        ]
        assert [e.seq for e in after] == sorted(e.seq for e in after)
        assert await store.last_seq() == after[-1].seq


async def test_many_workers_starting_at_once_migrate_once(url: str, pg_schema: str) -> None:
    stores = [PostgresStore(url, pool_size=2) for _ in range(6)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.open)
        async with admin() as conn:
            names = [
                r[0]
                for r in await conn.fetch(
                    f'SELECT name FROM "{pg_schema}".brains_jobs_migrations ORDER BY name'
                )
            ]
        assert names == [m.name for m in migrations.load("postgresql")]
        assert await stores[0].migrate() == []
    finally:
        for store in stores:
            await store.close()


async def test_migration_sql_builds_a_working_schema(pg_schema: str, tmp_path: Path) -> None:
    url = pg_url(pg_schema)
    sql = PostgresStore(url).migration_sql()
    assert f'"{pg_schema}".jobs' in sql and "{{" not in sql
    async with admin() as conn:
        await conn.execute(sql)
    async with runtime(url, tmp_path, create_schema=False) as rt:
        assert await rt.store.migrate() == []
        handle = await rt.enqueue(jobs.add, {"a": 4, "b": 5})
        async with running_worker(rt):
            assert (await handle.result(timeout=5)).total == 9


async def test_bulk_enqueue_keeps_input_order_and_unique_keys(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt:
        existing = await rt.enqueue(jobs.add, {"a": 0}, unique_key="k0")
        requests = [
            bj.JobRequest(jobs.add, {"a": i}, {"unique_key": f"k{i % 4}"} if i % 2 else {})
            for i in range(10)
        ] + [bj.JobRequest(jobs.add, {"a": 99}, {"unique_key": "k0"})]
        handles = await rt.enqueue_many(requests)
        assert [h.created for h in handles] == [
            True,
            True,
            True,
            True,
            True,
            False,
            True,
            False,
            True,
            False,
            False,
        ]
        ids = [h.id for h in handles]
        assert ids[5] == ids[9] == ids[1] and ids[7] == ids[3] and ids[10] == existing.id
        fresh = [i for i, h in zip(ids, handles, strict=True) if h.created]
        assert fresh == sorted(fresh)
        inputs = [(await rt.get(i)).input["a"] for i in fresh]
        assert inputs == [0, 1, 2, 3, 4, 6, 8]


async def test_unknown_schema_names_are_refused() -> None:
    with pytest.raises(bj.ConfigurationError):
        PostgresStore("postgresql+asyncpg://u@h/db?schema=bad-name")
    with pytest.raises(bj.ConfigurationError):
        PostgresStore("postgresql+psycopg://u@h/db")
    store = PostgresStore("postgresql://u@h:5/db?schema=s1&sslmode=disable")
    assert store.schema == "s1" and store.dsn == "postgresql://u@h:5/db?sslmode=disable"


async def test_jobs_survive_terminated_connections(
    url: str, pg_schema: str, tmp_path: Path
) -> None:
    async def enqueue_retrying(inputs: list[dict[str, int]]) -> list[bj.JobHandle[Any]]:
        for _ in range(5):
            try:
                return await rt_client.enqueue_many(jobs.add, inputs)
            except bj.StoreError:  # the documented outcome of a lost connection
                await anyio.sleep(0.1)
        raise AssertionError("enqueue never recovered")

    async with runtime(url, tmp_path, lease=2.0) as rt_worker, runtime(url, tmp_path) as rt_client:
        rt_client.store.poll_interval = 0.5  # its event feed may miss a notification
        async with running_worker(rt_worker, concurrency=5):
            handles: list[bj.JobHandle[Any]] = []
            for round_ in range(3):
                handles += await enqueue_retrying([{"a": round_, "b": i} for i in range(100)])
                await anyio.sleep(0.05)
                await terminate(
                    await backends(pg_schema, "pool") + await backends(pg_schema, "listener")
                )
            totals = [(await h.result(timeout=30)).total for h in handles]
    assert totals == [r + i for r in range(3) for i in range(100)]


async def test_ten_thousand_jobs_in_one_enqueue(url: str, tmp_path: Path) -> None:
    async with runtime(url, tmp_path) as rt:
        store = rt.store
        first = await store.enqueue([NewJob("add", "q", 0, '{"a": 1}', 1, unique_key="dup")])
        batch = [
            NewJob("add", "q", 0, json.dumps({"a": i}), 1, unique_key=None if i % 1000 else "dup")
            for i in range(10_000)
        ]
        result = await store.enqueue(batch)
        assert [r.created for r in result] == [i % 1000 != 0 for i in range(10_000)]
        assert {r.id for r in result if not r.created} == {first[0].id}
        created = [r.id for r in result if r.created]
        assert created == sorted(created) and len(set(created)) == 9_990
        assert await store.pending_count() == 9_991


async def test_transactional_enqueue_with_keys_and_options(url: str, tmp_path: Path) -> None:
    engine = create_async_engine(PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with runtime(url, tmp_path) as rt:
            existing = await rt.enqueue(jobs.add, {"a": 1}, unique_key="k")
            async with engine.connect() as conn, conn.begin():
                again = await rt.enqueue(jobs.add, {"a": 2}, unique_key="k", connection=conn)
                tagged = await rt.enqueue(
                    jobs.add, {"a": 3}, tags=["x"], metadata={"m": 1}, connection=conn
                )
            assert (again.id, again.created) == (existing.id, False)
            job = await rt.get(tagged.id)
            assert (job.tags, job.metadata, job.input) == (["x"], {"m": 1}, {"a": 3, "b": 0})
    finally:
        await engine.dispose()


async def test_a_burst_workers_last_events_reach_others_before_it_closes(
    url: str, tmp_path: Path
) -> None:
    async with runtime(url, tmp_path) as watcher:
        async with runtime(url, tmp_path) as rt:
            handle = await rt.enqueue(jobs.add, {"a": 1})
        async with watcher.events(job_id=handle.id, after=0) as events:
            async with runtime(url, tmp_path) as burst:
                # The worker's last results are written just before the runtime closes:
                # their notification must leave with them, not wait for a poll.
                await burst.run_worker(burst=True, maintenance=False)
            with anyio.fail_after(5):  # the watcher polls only once a minute
                async for event in events:
                    if event.status is S.SUCCEEDED:
                        break


async def test_a_job_enqueued_alone_is_queued_with_its_audit_row(url: str, tmp_path: Path) -> None:
    # One job with nothing but its input goes in as a row of values (not an array), on its
    # own and in a host's transaction; both must write the `queued` event and wake workers.
    engine = create_async_engine(PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with runtime(url, tmp_path) as rt_worker, runtime(url, tmp_path) as rt_client:
            first = await rt_client.enqueue(jobs.add, {"a": 1, "b": 2})
            async with engine.connect() as conn, conn.begin():
                hosted = await rt_client.enqueue(jobs.add, {"a": 3, "b": 4}, connection=conn)
            assert first.created and hosted.created and hosted.id > first.id
            async with running_worker(rt_worker):
                assert (await first.result(timeout=5)).total == 3
                assert (await hosted.result(timeout=5)).total == 7
            for handle, numbers in ((first, {"a": 1, "b": 2}), (hosted, {"a": 3, "b": 4})):
                job = await rt_client.get(handle.id)
                assert (job.type, job.queue, job.priority, job.input) == (
                    "add",
                    "default",
                    0,
                    numbers,
                )
                history = await rt_client.store.events_after(0, job_id=handle.id)
                statuses = [e.status for e in history if e.kind is bj.EventKind.STATUS]
                assert statuses == [S.QUEUED, S.RUNNING, S.SUCCEEDED]
    finally:
        await engine.dispose()
