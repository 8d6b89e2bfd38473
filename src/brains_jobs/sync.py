"""`SyncClient`: the runtime's job API for code that is not async (Django and Flask views,
management commands, scripts, threads).

One client owns one `Runtime`, opened on an event loop of its own in a daemon thread the
first time it is used; every method hands its call to that loop (an anyio
`BlockingPortal`) and blocks the calling thread until it returns. Calls from many threads
at once share the one loop and its connection pool. Validation, return values and
exceptions are those of the async `Runtime`.
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import concurrent.futures
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

import anyio
from anyio.from_thread import BlockingPortal
from pydantic import BaseModel

from .definitions import JobDefinition
from .enqueueing import JobRequest
from .exceptions import ConfigurationError, InvalidJobOption
from .handle import JobHandle, OutputParser
from .models import Job, JobPage, JobStatus
from .runtime import Runtime

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger("brains_jobs.sync")

Out = TypeVar("Out", bound=BaseModel)
T = TypeVar("T")

_THREAD_NAME = "brains-jobs-sync"


class SyncClient:
    """Enqueue, read, cancel and retry jobs, and wait for their results, from synchronous
    code: ``client = bj.SyncClient(url, jobs=[...])``, then ``client.enqueue(...)``.

    The client is lazy: nothing is opened until the first call, which starts the
    client's event loop in a daemon thread and opens its runtime there (create it at
    import time if you like, but use it only after a server forks its workers). Every
    method blocks until its call returns, and may be called from any number of threads.
    `close()`, or leaving a ``with SyncClient(...)`` block, closes the runtime and stops
    the thread; a client still open when the interpreter exits is closed then.

    In async code (a running event loop in the calling thread) every method raises
    `RuntimeError`: await the async `Runtime` there instead.

    :param url: the database, as for `Runtime` (`BRAINS_JOBS_DATABASE_URL`; default
        `sqlite+aiosqlite:///brains_jobs.db`).
    :param runtime_options: the other keywords of `Runtime`: `jobs`, `plugins`,
        `load_entrypoints`, `create_schema`, `read_only`, `wait_for_db`, `artifacts`, `lease`,
        `max_payload`, `retention`, `statement_timeout`, `settings`.
    """

    def __init__(self, url: str | None = None, **runtime_options: Any) -> None:
        # Built now, opened on first use: bad options and clashing job types fail here.
        self._runtime = Runtime(url, **runtime_options)
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._closed = False

    def __repr__(self) -> str:
        # No URL: it may hold a password.
        state = "closed" if self._closed else "open" if self._portal else "not started"
        return f"<SyncClient {state}>"

    # -- lifetime ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the runtime and stop the client's thread; calls still waiting (a
        `result` without timeout) raise `ConfigurationError`. Closing twice does nothing.
        """
        _refuse_in_event_loop("close")
        if self._forked():
            # The loop and its connections belong to the parent of this forked process
            # (and so may the lock): leave them alone.
            self._closed = True
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        atexit.unregister(self._close_at_exit)
        if portal is None or thread is None:
            return
        try:
            portal.call(portal.stop, True)
        except RuntimeError:
            pass  # the loop has already ended
        thread.join()

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:
            logger.exception("closing the SyncClient at exit failed")

    def _start(self, method: str) -> BlockingPortal:
        """The portal to the client's loop, started on first use."""
        _refuse_in_event_loop(method)
        if self._forked():
            # Checked before the lock, which a thread of the parent may have held.
            raise ConfigurationError(
                f"this SyncClient was started in process {self._pid}, before a fork; its "
                "event loop does not exist in this process: create the client after the "
                "fork, or create it lazily and use it only in the forked workers"
            )
        with self._lock:
            if self._closed:
                raise ConfigurationError("this SyncClient is closed")
            if self._thread is not None and not self._thread.is_alive():
                # The loop ended without `close()` (its failure was logged): start anew.
                self._portal = self._thread = None
            if self._portal is None:
                ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()
                thread = threading.Thread(
                    target=self._serve, args=(ready,), name=_THREAD_NAME, daemon=True
                )
                thread.start()
                self._portal = ready.result()  # raises what opening the runtime raised
                self._thread = thread
                self._pid = os.getpid()
                atexit.register(self._close_at_exit)
            return self._portal

    def _forked(self) -> bool:
        """Whether this client was started by another process, which then forked."""
        return self._pid is not None and self._pid != os.getpid()

    def _serve(self, ready: concurrent.futures.Future[BlockingPortal]) -> None:
        """The client's thread: open the runtime, serve calls until `close()`."""

        async def main() -> None:
            async with self._runtime:
                # The portal closes first: calls in flight end before the runtime does.
                async with BlockingPortal() as portal:
                    ready.set_result(portal)
                    await portal.sleep_until_stopped()

        try:
            anyio.run(main)
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                logger.exception("the SyncClient's event loop failed")

    def _call(self, method: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn()` on the client's loop for `method` and wait for its result."""
        portal = self._start(method)

        async def run() -> T:
            return await fn()

        try:
            return portal.call(run)
        except concurrent.futures.CancelledError:
            why = "was closed" if self._closed else "lost its event loop (see the log)"
            raise ConfigurationError(f"the SyncClient {why} while this call waited") from None

    def call(self, fn: Callable[[Runtime], Awaitable[T]]) -> T:
        """Run ``await fn(runtime)`` on the client's loop and return its result: for the
        `Runtime` methods this client does not wrap, as in
        ``client.call(lambda rt: rt.stats())``.
        """
        return self._call("call", lambda: fn(self._runtime))

    # -- enqueue ----------------------------------------------------------------------

    @overload
    def enqueue(self, job: JobDefinition[Any, Out], inp: Any, **options: Any) -> JobHandle[Out]: ...

    @overload
    def enqueue(self, job: str, inp: Any, **options: Any) -> JobHandle[Any]: ...

    def enqueue(
        self, job: JobDefinition[Any, Any] | str, inp: Any, **options: Any
    ) -> JobHandle[Any]:
        """Validate `inp` and enqueue one job, with the options of `Runtime.enqueue`
        (except `connection`); returns its handle: pass it to `result`, `get`, `cancel`.
        """
        _no_connection(options)
        return self._call("enqueue", functools.partial(self._runtime.enqueue, job, inp, **options))

    @overload
    def enqueue_many(
        self, job: JobDefinition[Any, Out], inputs: Iterable[Any], **options: Any
    ) -> builtins.list[JobHandle[Out]]: ...

    @overload
    def enqueue_many(
        self, job: str, inputs: Iterable[Any], **options: Any
    ) -> builtins.list[JobHandle[Any]]: ...

    @overload
    def enqueue_many(self, job: Iterable[JobRequest]) -> builtins.list[JobHandle[Any]]: ...

    def enqueue_many(
        self,
        job: JobDefinition[Any, Any] | str | Iterable[JobRequest],
        inputs: Iterable[Any] | None = None,
        **options: Any,
    ) -> builtins.list[JobHandle[Any]]:
        """Enqueue many jobs in one transaction, as `Runtime.enqueue_many`: every input
        is validated before any insert.
        """
        _no_connection(options)
        if not isinstance(job, JobDefinition | str):
            job = builtins.list(job)  # an iterator from this thread is read here, once
        if inputs is not None:
            inputs = builtins.list(inputs)
        return self._call(
            "enqueue_many", functools.partial(self._runtime.enqueue_many, job, inputs, **options)
        )

    # -- read -------------------------------------------------------------------------

    def get(self, job: int | JobHandle[Any]) -> Job:
        """The job's record, or `JobNotFound`."""
        return self._call("get", functools.partial(self._runtime.get, _job_id(job)))

    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs matching every filter given, newest first; page on with `next_cursor`."""
        return self._call(
            "list",
            functools.partial(
                self._runtime.list,
                status=status,
                type=type,
                queue=queue,
                tag=tag,
                owner=owner,
                created_after=created_after,
                created_before=created_before,
                limit=limit,
                cursor=cursor,
            ),
        )

    @overload
    def result(self, job: JobHandle[Out], *, timeout: float | None = None) -> Out: ...

    @overload
    def result(
        self, job: int, *, timeout: float | None = None, definition: JobDefinition[Any, Out]
    ) -> Out: ...

    @overload
    def result(self, job: int, *, timeout: float | None = None) -> Any: ...

    def result(
        self,
        job: int | JobHandle[Any],
        *,
        timeout: float | None = None,
        definition: JobDefinition[Any, Any] | None = None,
    ) -> Any:
        """Wait until the job is final and return its output: the output model of its
        typed handle or of `definition` (or of its type name, if this client knows it).
        `JobFailed`, `JobCancelled`, or `TimeoutError` after `timeout` seconds (the job
        goes on).
        """
        if isinstance(job, JobHandle):
            parser = definition or job.definition
            job_id = job.id
        else:
            parser, job_id = definition, job
        return self._call("result", functools.partial(self._result, job_id, parser, timeout))

    async def _result(
        self, job_id: int, definition: OutputParser[Any] | None, timeout: float | None
    ) -> Any:
        if definition is not None:
            job = await self._runtime.get(job_id)
            if job.type != definition.name:
                raise InvalidJobOption(
                    "definition", f"job {job_id} is a {job.type!r} job, not {definition.name!r}"
                )
        handle = JobHandle(self._runtime.source, job_id, definition)
        return await handle.result(timeout)

    # -- act --------------------------------------------------------------------------

    def cancel(self, job: int | JobHandle[Any], *, actor: str | None = None) -> JobStatus:
        """Cancel a job, as `Runtime.cancel`: CANCELLED, or RUNNING when a running job
        was asked to stop; `InvalidJobState` for a job that already finished.
        """
        return self._call(
            "cancel", functools.partial(self._runtime.cancel, _job_id(job), actor=actor)
        )

    def retry(self, job: int | JobHandle[Any], *, actor: str | None = None) -> JobHandle[Any]:
        """Run a failed, cancelled or skipped job again, as `Runtime.retry`;
        `InvalidJobState` for other statuses.
        """
        return self._call(
            "retry", functools.partial(self._runtime.retry, _job_id(job), actor=actor)
        )


def _job_id(job: int | JobHandle[Any]) -> int:
    return job.id if isinstance(job, JobHandle) else job


def _no_connection(options: dict[str, Any]) -> None:
    if "connection" in options:
        raise InvalidJobOption(
            "connection",
            "a SyncClient cannot enqueue in the caller's transaction (its runtime runs on "
            "an event loop of its own): use the async Runtime for that",
        )


def _refuse_in_event_loop(method: str) -> None:
    """A blocking call from a running event loop would stall everything on that loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"SyncClient.{method}() blocks its thread and was called from a running event "
        "loop: in async code, use the async `bj.Runtime` and await its methods "
        "(`async with bj.Runtime(...) as rt: await rt.enqueue(...)`)"
    )
