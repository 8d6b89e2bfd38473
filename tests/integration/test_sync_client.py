"""`SyncClient` on each store: the async API's results and errors from plain threads, with
a real worker running on an event loop of its own in another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

import brains_jobs as bj
from tests.support import jobs


def _client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "brains-jobs-sync"]


def make_client(url: str, tmp_path: Path) -> bj.SyncClient:
    return bj.SyncClient(
        url, jobs=jobs.ALL, load_entrypoints=False, artifacts=str(tmp_path / "artifacts")
    )


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[bj.SyncClient]:
    with make_client(database_url, tmp_path) as c:
        yield c
    assert not _client_threads(), "close() left the client's thread running"


@contextlib.contextmanager
def worker_thread(url: str, tmp_path: Path) -> Iterator[bj.Worker]:
    """A worker on a runtime of its own, on an event loop in another thread."""
    runtime = bj.Runtime(
        url,
        jobs=jobs.ALL,
        load_entrypoints=False,
        artifacts=str(tmp_path / "artifacts"),
        lease=5.0,
    )
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(runtime):
        worker = runtime.worker(concurrency=8, shutdown_timeout=2.0)
        done, _ = portal.start_task(worker.run)
        try:
            yield worker
        finally:
            portal.call(worker.stop)
            done.result(timeout=10)


def test_enqueue_and_typed_result_from_a_worker(
    client: bj.SyncClient, database_url: str, tmp_path: Path
) -> None:
    assert not _client_threads(), "the client must start lazily"
    typed = client.enqueue(jobs.add, jobs.Numbers(a=2, b=3))
    assert len(_client_threads()) == 1
    by_name = client.enqueue("add", {"a": 40, "b": 2})
    many = client.enqueue_many(jobs.add, [{"a": i} for i in range(3)])
    assert client.get(typed).status is bj.JobStatus.QUEUED
    with worker_thread(database_url, tmp_path):
        result = client.result(typed, timeout=10)
        untyped = client.result(by_name.id, timeout=10)
        by_id = client.result(by_name.id, timeout=10, definition=jobs.add)
        totals = [client.result(h, timeout=10).total for h in many]
    assert isinstance(result, jobs.Sum) and result.total == 5
    assert isinstance(untyped, jobs.Sum) and untyped.total == 42
    assert by_id == jobs.Sum(total=42)
    assert totals == [0, 1, 2]
    job = client.get(typed.id)
    assert job.status is bj.JobStatus.SUCCEEDED and job.output == {"total": 5}
    page = client.list(status="succeeded", type="add")
    assert {j.id for j in page.jobs} == {typed.id, by_name.id, *(h.id for h in many)}
    with pytest.raises(bj.InvalidJobOption, match="'add' job, not 'sleep'"):
        client.result(typed.id, definition=jobs.sleep)
    stats = client.call(lambda rt: rt.stats())
    assert stats.by_type["add"] == {"succeeded": 5}


def test_a_failed_job_raises_job_failed(
    client: bj.SyncClient, database_url: str, tmp_path: Path
) -> None:
    handle = client.enqueue(jobs.permanent, {"text": "x"})
    with worker_thread(database_url, tmp_path), pytest.raises(bj.JobFailed) as info:
        client.result(handle, timeout=10)
    assert info.value.job_id == handle.id
    assert "PermanentError" in str(info.value)


def test_invalid_input_raises_invalid_job_input_and_writes_nothing(
    client: bj.SyncClient,
) -> None:
    with pytest.raises(bj.InvalidJobInput) as info:
        client.enqueue("add", {"a": "three"})
    assert info.value.fields == ["a"]
    with pytest.raises(bj.InvalidJobInput):
        client.enqueue_many(jobs.add, [{"a": 1}, {"a": 2}, {"b": 3}])
    with pytest.raises(bj.UnknownJobType, match="'ad'"):
        client.enqueue("ad", {"a": 1})
    with pytest.raises(bj.InvalidJobOption, match="connection"):
        client.enqueue(jobs.add, {"a": 1}, connection=object())
    with pytest.raises(bj.JobNotFound):
        client.get(12345)
    assert client.list().jobs == []


def test_twenty_threads_enqueue_and_wait_at_once(
    client: bj.SyncClient, database_url: str, tmp_path: Path
) -> None:
    barrier = threading.Barrier(20)

    def enqueue(i: int) -> int:
        barrier.wait()  # every thread calls at once, the first call starting the client
        return client.enqueue(jobs.add, {"a": i, "b": 1000}).id

    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(enqueue, range(20)))
        assert len(set(ids)) == 20
        assert len(_client_threads()) == 1, "one event loop serves every thread"
        assert len(client.list(type="add").jobs) == 20
        with worker_thread(database_url, tmp_path):
            totals = list(pool.map(lambda job_id: client.result(job_id, timeout=15).total, ids))
    assert totals == [i + 1000 for i in range(20)]


def test_cancel_and_retry(client: bj.SyncClient) -> None:
    handle = client.enqueue(jobs.add, {"a": 1}, delay=3600)
    assert client.cancel(handle, actor="ops") is bj.JobStatus.CANCELLED
    with pytest.raises(bj.JobCancelled):
        client.result(handle, timeout=5)
    with pytest.raises(bj.InvalidJobState):
        client.cancel(handle.id)
    again = client.retry(handle.id, actor="ops")
    assert again.id == handle.id and again.definition is jobs.add
    job = client.get(handle)
    assert job.status is bj.JobStatus.QUEUED
    with pytest.raises(bj.InvalidJobState):
        client.retry(handle)
    with pytest.raises(bj.JobNotFound):
        client.cancel(12345)


def test_result_times_out_and_the_job_goes_on(client: bj.SyncClient) -> None:
    handle = client.enqueue(jobs.add, {"a": 1})
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.result(handle, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 5
    assert client.get(handle).status is bj.JobStatus.QUEUED


def test_refused_inside_a_running_event_loop(client: bj.SyncClient) -> None:
    async def from_async_code() -> None:
        client.enqueue(jobs.add, {"a": 1})

    with pytest.raises(RuntimeError, match=r"SyncClient\.enqueue\(\).*async `bj\.Runtime`"):
        asyncio.run(from_async_code())
    assert not _client_threads(), "a refused call must not start the client"
    client.enqueue(jobs.add, {"a": 1})  # from plain code it works
    assert len(client.list().jobs) == 1


def test_close_is_idempotent_and_final(database_url: str, tmp_path: Path) -> None:
    never_used = make_client(database_url, tmp_path)
    never_used.close()
    never_used.close()

    client = make_client(database_url, tmp_path)
    handle = client.enqueue(jobs.add, {"a": 1})
    waiting: list[BaseException] = []

    def wait() -> None:
        try:
            client.result(handle)
        except BaseException as exc:
            waiting.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    client.close()
    waiter.join(5)
    assert not _client_threads()
    assert [type(e) for e in waiting] == [bj.ConfigurationError]
    assert "closed" in str(waiting[0])
    client.close()
    with pytest.raises(bj.ConfigurationError, match="closed"):
        client.get(handle)

    with make_client(database_url, tmp_path) as reopened:
        assert reopened.get(handle).status is bj.JobStatus.QUEUED
    assert not _client_threads()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_client_started_before_fork_refuses_in_the_child(client: bj.SyncClient) -> None:
    handle = client.enqueue(jobs.add, {"a": 1})
    pid = os.fork()
    if pid == 0:  # the child: leave at once, whatever happens
        code = 1
        try:
            client.get(handle)
        except bj.ConfigurationError as exc:
            code = 0 if "before a fork" in str(exc) else 2
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.get(handle).status is bj.JobStatus.QUEUED
