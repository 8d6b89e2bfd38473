"""The PostgreSQL store's kept connection: calls run on one connection the store holds
out of the pool, calls that find it busy take the pool, and nothing that goes wrong on it
(a cancelled statement, an error, a transaction left open, a closing store) reaches the
next call or holds up closing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

import brains_jobs as bj
from brains_jobs.store.postgres import PostgresStore
from tests.conftest import pg_url
from tests.support.postgres import admin

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

PID = "SELECT pg_backend_pid()"


@pytest.fixture
async def store(pg_schema: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(pg_url(pg_schema), pool_size=1)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def pid(store: PostgresStore) -> int:
    return int((await store.read(PID))[0][0])


async def test_the_store_keeps_one_connection_out_of_the_pool_between_calls(
    store: PostgresStore,
) -> None:
    assert len({await pid(store) for _ in range(6)}) == 1
    assert store.pool.get_size() - store.pool.get_idle_size() == 1  # the kept one


async def test_calls_that_find_the_kept_connection_busy_take_the_pool(store: PostgresStore) -> None:
    kept = await pid(store)
    slow_done = anyio.Event()
    others: list[int] = []

    async def slow() -> None:
        await store.read("SELECT pg_sleep(1.5)")
        slow_done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await anyio.sleep(0.05)  # the slow statement holds the kept connection

            async def other() -> None:
                others.append(await pid(store))

            async with anyio.create_task_group() as inner:
                for _ in range(4):  # more calls than the pool has connections left
                    inner.start_soon(other)
            assert not slow_done.is_set()
    assert len(others) == 4 and kept not in others
    assert await pid(store) == kept  # free again, and still kept


async def test_a_cancelled_statement_neither_lingers_nor_blocks_the_next_call(
    store: PostgresStore,
) -> None:
    kept = await pid(store)
    with anyio.move_on_after(0.2) as scope:
        await store.read("SELECT pg_sleep(5)")
    assert scope.cancelled_caught
    with anyio.fail_after(5):
        assert (await store.read("SELECT 1"))[0][0] == 1
        assert await store.pending_count() == 0
    # The cancelled statement stops well before its 5 s: PostgreSQL takes a cancel request
    # on a connection of its own, so it may still run for a moment on a loaded machine.
    running = (
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(5)%'"
        " AND state = 'active'"
    )
    async with admin() as conn:
        with anyio.fail_after(2):
            while await conn.fetch(running, kept):
                await anyio.sleep(0.05)


async def test_a_failed_transaction_does_not_reach_the_next_call(store: PostgresStore) -> None:
    async def fail_inside(conn: asyncpg.Connection) -> None:
        await conn.execute("BEGIN")
        await conn.execute("SELECT 1 / 0")  # the transaction is now aborted

    await pid(store)
    with pytest.raises(bj.StoreError, match="division by zero"):
        await store.run("test", fail_inside)
    for _ in range(3):  # not "current transaction is aborted", on whichever connection
        assert (await store.read("SELECT 2"))[0][0] == 2


async def test_a_transaction_left_open_is_rolled_back_not_kept(store: PostgresStore) -> None:
    async def begin(conn: asyncpg.Connection) -> None:
        await conn.execute("BEGIN; SET LOCAL application_name = 'left open'")

    await store.run("test", begin)
    for _ in range(3):  # whichever connection serves them, none is inside that transaction
        rows = await store.read("SELECT current_setting('application_name')")
        assert rows[0][0].startswith("brains_jobs pool")


async def test_closing_while_the_kept_connection_is_busy_does_not_wait_for_the_pool(
    store: PostgresStore,
) -> None:
    await pid(store)
    outcome: list[object] = []

    async def slow() -> None:
        try:
            outcome.append(await store.read("SELECT pg_sleep(0.3)"))
        except bj.StoreError as exc:
            outcome.append(exc)

    with anyio.fail_after(5):  # the pool waits 10 s for a connection never given back
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await anyio.sleep(0.05)
            await store.close()
    assert len(outcome) == 1


async def test_events_are_announced_on_the_listen_connection_while_the_pool_is_busy(
    store: PostgresStore,
) -> None:
    await store.event_signal.wait(timeout=0.01)  # a waiter: the store starts listening
    with anyio.fail_after(5):
        while store.listener_pid is None:
            await anyio.sleep(0.02)
    heard: list[tuple[int, float]] = []
    async with admin() as conn:
        await conn.add_listener(
            store.events_channel, lambda _c, pid, _ch, _p: heard.append((pid, anyio.current_time()))
        )
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(2):  # the kept connection and the pool's only other one
                    tg.start_soon(store.read, "SELECT pg_sleep(2)")
                await anyio.sleep(0.2)
                began = anyio.current_time()
                store.announce_events()
                while not heard:
                    await anyio.sleep(0.01)
    pid, at = heard[0]
    assert pid == store.listener_pid
    assert at - began < 1.0  # not after a pooled connection came free
