"""The job state machine, driven at random through a real store and checked against a
plain model after every step, on SQLite and on PostgreSQL.

The rules act on the store as the runtime's parts do: producers enqueue (with and without
unique keys), workers claim, heartbeat, record starts, finish (success, a failure that is
retried or final, a cancellation, a late result with an old lease token) and release;
`JobAdmin` cancels and retries; leases lapse (claimed or renewed with a lease that has
already run out, or a short one that is then waited out) and the rescuer makes one pass.
After every step each job read back (`store.get`) must match the model: its status,
attempts and allowance, errors, crashes, cancel request, lease; `expired()` must list
exactly the model's lapsed leases; and each job's audit trail (`events_after(0,
job_id=...)`) must be exactly the events its changes wrote.

Invariants besides: a job is in exactly one status (the counts by status add up), a final
job never changes unless it is retried, the attempt numbers a claim hands out never
repeat for a job, nothing is running without a lease (and nothing holds one that is not
running), and only final jobs have finished.

The async store is driven from the synchronous state machine through a blocking portal:
one event loop per test, which opens the runtime and runs every call.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from unittest.mock import ANY

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pydantic import BaseModel
from sqlalchemy import text

import brains_jobs as bj
from brains_jobs.maintenance import MaintenanceContext, Rescuer
from brains_jobs.store import JobFilter, NewEvent, NewJob, Outcome, Store
from brains_jobs.store.audit import late_result

T = TypeVar("T")
S = bj.JobStatus

# Hypothesis keeps caches beside the tests unless told otherwise: keep them out of the
# checkout (examples are not saved at all: `database=None`).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "brains-jobs-hypothesis")

FULL = os.environ.get("BRAINS_JOBS_FAULTS", "").lower() == "full"
SETTINGS = settings(
    max_examples=150 if FULL else 20,
    stateful_step_count=60 if FULL else 30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Shrinking a failure through a real store takes a while: allow it to finish.
pytestmark = pytest.mark.timeout(900)


class Payload(BaseModel):
    n: int = 0


class Result(BaseModel):
    n: int = 0


# Two job types with different policies: after a crash, a quick job may run again at
# once (no backoff), a slow one waits far longer than any test (it stays queued).
@bj.job("sm.quick", max_attempts=2, backoff=0, max_crashes=2, queue="q1")
async def quick(ctx: bj.JobContext, inp: Payload) -> Result:
    """Never run here: the state machine plays the worker."""
    return Result(n=inp.n)


@bj.job("sm.slow", max_attempts=3, backoff=3600, backoff_cap=3600, max_crashes=3, queue="q2")
async def slow(ctx: bj.JobContext, inp: Payload) -> Result:
    """Never run here: the state machine plays the worker."""
    return Result(n=inp.n)


DEFINITIONS = {d.name: d for d in (quick, slow)}
TYPES = tuple(sorted(DEFINITIONS))
QUEUES = ("q1", "q2")
KEYS = ("k1", "k2", "k3")
WORKERS = ("w1", "w2")
ACTOR = "tester"
REASON = "worker shutting down"
LIVE, LAPSED, SHORT = "live", "lapsed", "short"
# Seconds a lease is taken or renewed for: far longer than the test, already over, or
# short enough to be waited out (the rule then sleeps past it).
LEASES = {LIVE: 3600.0, LAPSED: -1.0, SHORT: 0.02}
SHORT_WAIT = 0.06
CURRENT, OLD, RANDOM = "current", "old", "random"


class Ev(NamedTuple):
    """One expected audit event (ANY where the value is not specified)."""

    kind: str
    status: S | None
    attempt: Any
    actor: str | None
    message: Any


@dataclass
class ModelJob:
    """What the model knows of one job."""

    id: int
    type: str
    queue: str
    priority: int
    unique_key: str | None
    max_attempts: int
    input: dict[str, Any]
    keep_key: bool = False  # the key is held until the job is pruned
    status: S = S.QUEUED
    attempts: int = 0
    errors: int = 0
    crashes: int = 0
    token: str | None = None  # the lease token while running
    lapsed: bool = False  # the lease has run out (while running)
    worker: str | None = None
    cancel_requested: bool = False
    started: bool = False  # the handler's start is recorded (while running)
    mark_start: bool = False  # the next claimer must record the start first
    ready: bool = True  # queued and its run time has come
    since: int = 0  # the step that set its run time (claim order after priority)
    output: Any = None
    progress: float | None = None
    tokens: list[str] = field(default_factory=list)  # every token it ever had
    claimed: list[int] = field(default_factory=list)  # attempt numbers claims returned
    trail: list[Ev] = field(default_factory=list)

    def change(
        self, status: S, *, actor: str | None = None, message: Any = None, event: bool = True
    ) -> None:
        """Move to `status`, writing the status event the store must write."""
        self.status = status
        if status is not S.RUNNING:
            self.token = None
            self.lapsed = False
            self.started = False
        if event:
            self.trail.append(Ev("status", status, self.attempts, actor, message))


def outcome_error(attempt: int) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "type": "ValueError",
        "message": "boom",
        "traceback": None,
        "at": datetime.now(UTC).isoformat(),
    }


async def wipe(store: Store) -> None:
    """Delete every job and event (each example starts from an empty database)."""
    async with store.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("DELETE FROM job_events"))
        await conn.execute(text("DELETE FROM jobs"))


class JobMachine(RuleBasedStateMachine):
    """Rules act on the store and on the model; the invariant compares the two."""

    def __init__(self, portal: BlockingPortal, rt: bj.Runtime, ctx: MaintenanceContext) -> None:
        super().__init__()
        self.portal = portal
        self.rt = rt
        self.store = rt.store
        self.ctx = ctx
        self.jobs: dict[int, ModelJob] = {}
        self.step = 0
        self.final_records: dict[int, dict[str, Any]] = {}
        # The jobs the last step acted on: read one by one as well (`get`, their events).
        self.touched: set[int] = set()
        self.call(wipe, self.store)

    # -- picking jobs and leases --------------------------------------------------------

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.portal.call(fn, *args)

    def tick(self) -> int:
        self.step += 1
        return self.step

    def pick(self, index: int) -> ModelJob:
        ids = sorted(self.jobs)
        job = self.jobs[ids[index % len(ids)]]
        self.touched.add(job.id)
        return job

    def token_for(self, job: ModelJob, choice: str) -> str:
        """The job's current lease token, one it had before, or one it never had."""
        if choice == CURRENT and job.token is not None:
            return job.token
        old = [t for t in job.tokens if t != job.token]
        if choice != RANDOM and old:
            return old[-1]
        return uuid.uuid4().hex

    def leases(self, picks: list[tuple[int, str]]) -> list[tuple[ModelJob, str]]:
        """(job, token) pairs for distinct jobs."""
        chosen: dict[int, tuple[ModelJob, str]] = {}
        for index, choice in picks:
            job = self.pick(index)
            chosen.setdefault(job.id, (job, self.token_for(job, choice)))
        return list(chosen.values())

    @staticmethod
    def holds(job: ModelJob, token: str) -> bool:
        return job.status is S.RUNNING and job.token == token

    def lease_lapses(self, kind: str, held: list[ModelJob]) -> None:
        """After taking or renewing leases of `kind`: wait out a short one."""
        if kind == SHORT and held:
            self.call(anyio.sleep, SHORT_WAIT)
        for job in held:
            job.lapsed = kind != LIVE

    def make_ready(self, job: ModelJob, ready: bool = True) -> None:
        job.ready = ready
        job.since = self.step

    # -- producers ----------------------------------------------------------------------

    def holders(self) -> dict[str, int]:
        """Who holds each unique key: a job that waits, is queued or runs, or one that
        keeps its key until pruned.
        """
        return {
            j.unique_key: j.id
            for j in self.jobs.values()
            if j.unique_key is not None
            and (j.status in (S.WAITING, S.QUEUED, S.RUNNING) or j.keep_key)
        }

    @rule(
        specs=st.lists(
            st.tuples(
                st.sampled_from(TYPES),
                st.sampled_from(QUEUES),
                st.sampled_from((0, 1, 5)),
                st.none() | st.sampled_from(KEYS),
                st.integers(1, 3),
                st.sampled_from((False, False, True)),  # scheduled for later
                st.sampled_from(("return_existing", "replace", "reject")),
                st.sampled_from((False, False, True)),  # the key is kept until pruned
            ),
            min_size=1,
            max_size=3,
        )
    )
    def enqueue(self, specs: list[tuple[str, str, int, str | None, int, bool, str, bool]]) -> None:
        step = self.tick()
        later = datetime.now(UTC) + timedelta(hours=1)
        new = [
            NewJob(
                type=type_,
                queue=queue,
                priority=priority,
                input=json.dumps({"n": step * 10 + n}),
                max_attempts=max_attempts,
                run_at=later if scheduled else None,
                unique_key=key,
                on_conflict=on_conflict,
                unique_keep=keep,
            )
            for n, (type_, queue, priority, key, max_attempts, scheduled, on_conflict, keep) in (
                enumerate(specs)
            )
        ]

        # What the batch must do: a repeat of a held key (held before, or by a job of this
        # batch) is not inserted; a `reject` takes the whole batch back.
        holders = self.holders()
        pending: dict[str, int | None] = dict(holders)  # None: a job of this batch
        rejected: tuple[str, int | None] | None = None
        for job in new:
            key = job.unique_key
            if key is None:
                continue
            if key in pending:
                if job.on_conflict == "reject" and rejected is None:
                    rejected = (key, pending[key])
            else:
                pending[key] = None

        async def enqueue() -> list[Any] | bj.DuplicateJob:
            try:
                return await self.store.enqueue(new)
            except bj.DuplicateJob as exc:
                return exc

        result = self.call(enqueue)
        if rejected is not None:
            assert isinstance(result, bj.DuplicateJob), f"{rejected} is a repeat: {result}"
            key, holder = rejected
            assert result.key == key, (result.key, key)
            if holder is not None:
                assert result.job_id == holder, (result.job_id, holder)
            return
        assert not isinstance(result, BaseException), f"refused: {result!r}"
        assert len(result) == len(new), result

        created: list[int] = []
        replaced: dict[int, NewJob] = {}
        for job, spec, got in zip(new, specs, result, strict=True):
            key = job.unique_key
            if key is not None and key in holders:
                holder = self.jobs[holders[key]]
                assert not got.created, f"{key!r} is held by job {holder.id}: {result}"
                assert got.id == holder.id, f"{key!r} is held by job {holder.id}: {result}"
                # only a holder of the same type that has not started is replaced
                can_replace = holder.type == job.type and holder.status in (S.WAITING, S.QUEUED)
                if job.on_conflict == "replace" and can_replace:
                    replaced[holder.id] = job  # the last repeat of the batch wins
                continue
            assert got.created, f"job {job} should have been inserted: {result}"
            assert got.id not in self.jobs, f"id {got.id} given twice: {result}"
            created.append(got.id)
            model = ModelJob(
                id=got.id,
                type=job.type,
                queue=job.queue,
                priority=job.priority,
                unique_key=key,
                keep_key=job.unique_keep,
                max_attempts=job.max_attempts,
                input=json.loads(job.input),
            )
            self.make_ready(model, not spec[5])
            model.trail.append(Ev("status", S.QUEUED, 0, None, None))
            self.jobs[got.id] = model
            self.touched.add(got.id)
            if key is not None:
                holders[key] = got.id
        assert created == sorted(created), f"inserted jobs get ascending ids: {result}"
        for job, got in zip(new, result, strict=True):
            if got.created:
                assert not got.replaced, result
            elif job.on_conflict == "replace":
                assert got.replaced == (got.id in replaced), (
                    f"replaced {sorted(replaced)}: {result}"
                )
            elif got.id not in replaced:
                assert not got.replaced, result
        for holder_id, job in replaced.items():
            self.touched.add(holder_id)
            holder = self.jobs[holder_id]
            holder.input = json.loads(job.input)
            self.make_ready(holder, job.run_at is None)
            holder.trail.append(Ev("action", holder.status, holder.attempts, None, ANY))

    # -- workers ------------------------------------------------------------------------

    @precondition(lambda self: any(j.status is S.QUEUED for j in self.jobs.values()))
    @rule(
        limit=st.integers(1, 3),
        lease=st.sampled_from((LIVE, LAPSED, SHORT)),
        isolated=st.sampled_from((False, False, True)),
        queues=st.sampled_from((None, None, ("q1",), ("q2",), QUEUES)),
        types=st.sampled_from((TYPES, TYPES, ("sm.quick",))),
        worker=st.sampled_from(WORKERS),
    )
    def claim(
        self,
        limit: int,
        lease: str,
        isolated: bool,
        queues: tuple[str, ...] | None,
        types: tuple[str, ...],
        worker: str,
    ) -> None:
        self.tick()
        candidates = [
            j
            for j in self.jobs.values()
            if j.status is S.QUEUED
            and j.ready
            and (j.crashes > 0) == isolated
            and j.type in types
            and (queues is None or j.queue in queues)
        ]
        expected = sorted(candidates, key=lambda j: (-j.priority, j.since, j.id))[:limit]

        async def claim() -> list[Any]:
            return await self.store.claim(
                worker_id=worker,
                queues=queues,
                types=types,
                limit=limit,
                lease=LEASES[lease],
                isolated=isolated,
            )

        claimed = self.call(claim)
        assert [c.id for c in claimed] == [j.id for j in expected], (
            "claim takes the best ready jobs, best first (priority, then run time, then id)",
            [(j.id, j.priority, j.since) for j in candidates],
        )
        assert len({c.lease_token for c in claimed}) <= 1
        for c in claimed:
            job = self.jobs[c.id]
            self.touched.add(c.id)
            assert c.attempt == job.attempts + 1, (c, job)
            assert c.attempt not in job.claimed, f"attempt number {c.attempt} handed out again"
            assert c.max_attempts == job.max_attempts, (c, job)
            assert c.mark_start == job.mark_start, (c, job)
            assert (c.type, c.queue) == (job.type, job.queue), (c, job)
            assert json.loads(c.input) == job.input, (c, job)
            assert c.lease_token not in job.tokens, "a claim gets a new lease token"
            job.attempts += 1
            job.claimed.append(c.attempt)
            job.token = c.lease_token
            job.tokens.append(c.lease_token)
            job.worker = worker
            job.started = False
            job.change(S.RUNNING, actor=worker)  # the claiming worker is the actor
        self.lease_lapses(lease, expected)

    @precondition(lambda self: self.jobs)
    @rule(
        picks=st.lists(
            st.tuples(st.integers(0, 255), st.sampled_from((CURRENT, CURRENT, OLD, RANDOM))),
            min_size=1,
            max_size=3,
        ),
        lease=st.sampled_from((LIVE, LAPSED, SHORT)),
        started=st.lists(st.booleans(), min_size=3, max_size=3),
    )
    def heartbeat(self, picks: list[tuple[int, str]], lease: str, started: list[bool]) -> None:
        self.tick()
        leases = self.leases(picks)
        starting = [job.id for (job, _), flag in zip(leases, started, strict=False) if flag]

        async def beat() -> tuple[set[int], set[int]]:
            return await self.store.heartbeat(
                [(job.id, token) for job, token in leases], LEASES[lease], started=starting
            )

        lost, asked = self.call(beat)
        held = [job for job, token in leases if self.holds(job, token)]
        assert lost == {job.id for job, _ in leases} - {j.id for j in held}, (lost, leases)
        assert asked == {j.id for j in held if j.cancel_requested}, (asked, leases)
        for job in held:
            if job.id in starting:
                job.started = True
                job.mark_start = False
        self.lease_lapses(lease, held)

    @precondition(lambda self: self.jobs)
    @rule(
        picks=st.lists(
            st.tuples(st.integers(0, 255), st.sampled_from((CURRENT, CURRENT, OLD, RANDOM))),
            min_size=1,
            max_size=3,
        )
    )
    def mark_started(self, picks: list[tuple[int, str]]) -> None:
        self.tick()
        leases = self.leases(picks)
        lost = self.call(self.store.mark_started, [(job.id, token) for job, token in leases])
        held = [job for job, token in leases if self.holds(job, token)]
        assert lost == {job.id for job, _ in leases} - {j.id for j in held}, (lost, leases)
        for job in held:
            job.started = True
            job.mark_start = False

    @precondition(lambda self: self.jobs)
    @rule(
        pick=st.integers(0, 255),
        choice=st.sampled_from((CURRENT, CURRENT, CURRENT, OLD, RANDOM)),
        kind=st.sampled_from(("succeed", "fail", "permanent", "cancel")),
        retry_later=st.booleans(),
        message=st.none() | st.just("attempt note"),
        progress=st.booleans(),
    )
    def finish(
        self,
        pick: int,
        choice: str,
        kind: str,
        retry_later: bool,
        message: str | None,
        progress: bool,
    ) -> None:
        """One attempt ends as the worker decides: a success, a failure retried while
        attempts are left, a permanent failure, a cancellation; with an old or a made-up
        token, it is a late result and must be rejected.
        """
        self.tick()
        job = self.pick(pick)
        token = self.token_for(job, choice)
        held = self.holds(job, token)
        retry_in = 3600.0 if retry_later else 0.0
        fields: dict[str, Any] = {"message": message, "attempt": job.attempts}
        if kind == "succeed":
            outcome = Outcome(
                job.id, token, S.SUCCEEDED, output=json.dumps({"n": job.id}), **fields
            )
        elif kind == "fail" and job.attempts < job.max_attempts:
            error = outcome_error(job.attempts)
            outcome = Outcome(job.id, token, S.QUEUED, error=error, retry_in=retry_in, **fields)
        elif kind in ("fail", "permanent"):
            error = outcome_error(job.attempts)
            outcome = Outcome(job.id, token, S.FAILED, error=error, **fields)
        else:
            outcome = Outcome(job.id, token, S.CANCELLED, **fields)
        # Only the holder of the lease reports progress with its outcome.
        events = (
            [NewEvent(job.id, job.type, "progress", job.attempts, progress=0.5, message="half")]
            if progress and held
            else []
        )
        rejected = self.call(self.store.finish, [outcome], events)
        for event in events:
            job.trail.append(Ev("progress", None, event.attempt, None, event.message))
            job.progress = event.progress
        if not held:
            assert rejected == [job.id], f"a late {kind} result must be rejected: {rejected}"
            job.trail.append(Ev("log", None, ANY, None, late_result(outcome.status.value)))
            return
        assert rejected == [], f"the holder's {kind} result was rejected"
        status = outcome.status
        overridden = job.cancel_requested and status in (S.QUEUED, S.FAILED)
        if overridden:
            status = S.CANCELLED
        if outcome.error is not None:
            job.errors += 1
        if status is S.SUCCEEDED:
            job.output = json.loads(outcome.output or "null")
            job.progress = 1.0
        job.change(status, message=ANY if overridden else message)
        if status is S.QUEUED:
            self.make_ready(job, not retry_later)

    @precondition(lambda self: self.jobs)
    @rule(pick=st.integers(0, 255), value=st.sampled_from((0.25, 0.75)))
    def report_progress(self, pick: int, value: float) -> None:
        """A progress report on its own (no outcome): it moves a running job's progress."""
        self.tick()
        job = self.pick(pick)
        event = NewEvent(job.id, job.type, "progress", job.attempts, progress=value, message="p")
        assert self.call(self.store.finish, [], [event]) == []
        job.trail.append(Ev("progress", None, job.attempts, None, "p"))
        if job.status is S.RUNNING:
            job.progress = value

    @precondition(lambda self: self.jobs)
    @rule(
        picks=st.lists(
            st.tuples(st.integers(0, 255), st.sampled_from((CURRENT, CURRENT, OLD, RANDOM))),
            min_size=1,
            max_size=3,
        )
    )
    def release(self, picks: list[tuple[int, str]]) -> None:
        """A worker shutting down gives its jobs back; a stale lease is ignored."""
        self.tick()
        leases = self.leases(picks)
        self.call(self.store.release, [(job.id, token) for job, token in leases], REASON)
        for job, token in leases:
            if not self.holds(job, token):
                continue
            job.max_attempts += 1
            job.worker = None
            if job.cancel_requested:
                job.change(S.CANCELLED, message=REASON)
            else:
                job.change(S.QUEUED, message=REASON)
                self.make_ready(job)

    # -- admin --------------------------------------------------------------------------

    @precondition(lambda self: self.jobs)
    @rule(pick=st.integers(0, 255))
    def cancel(self, pick: int) -> None:
        self.tick()
        job = self.pick(pick)

        async def cancel() -> S | str:
            try:
                return await self.rt.admin.cancel(job.id, actor=ACTOR)
            except bj.InvalidJobState:
                return "refused"

        result = self.call(cancel)
        if job.status is S.QUEUED:
            assert result is S.CANCELLED, result
            job.cancel_requested = False
            job.change(S.CANCELLED, actor=ACTOR, message=ANY)
        elif job.status is S.RUNNING:
            assert result is S.RUNNING, result
            job.cancel_requested = True
            job.trail.append(Ev("action", S.RUNNING, job.attempts, ACTOR, ANY))
        else:
            assert result == "refused", f"a {job.status} job cannot be cancelled: {result}"

    @precondition(lambda self: self.jobs)
    @rule(pick=st.integers(0, 255))
    def retry(self, pick: int) -> None:
        self.tick()
        job = self.pick(pick)

        async def retry() -> int | str:
            try:
                return await self.rt.admin.retry(job.id, actor=ACTOR)
            except bj.InvalidJobState:
                return "refused"

        result = self.call(retry)
        holder = self.holders().get(job.unique_key or "", job.id)
        if job.status not in (S.FAILED, S.CANCELLED):
            assert result == "refused", f"a {job.status} job cannot be retried: {result}"
            return
        if holder != job.id:
            assert result == "refused", f"job {holder} holds the key of job {job.id}: {result}"
            return
        job.max_attempts = job.attempts + DEFINITIONS[job.type].max_attempts
        assert result == job.max_attempts, result
        job.cancel_requested = False
        job.worker = None
        job.output = None
        job.change(S.QUEUED, actor=ACTOR, message=ANY)
        self.make_ready(job)
        self.final_records.pop(job.id, None)

    # -- maintenance --------------------------------------------------------------------

    @rule()
    def rescue(self) -> None:
        """One pass of the rescuer over the lapsed leases."""
        self.tick()
        rescued = self.call(Rescuer().rescue, self.ctx)
        lapsed = sorted(j.id for j in self.jobs.values() if j.status is S.RUNNING and j.lapsed)
        assert sorted(rescued) == lapsed, f"rescued {rescued}, lapsed leases {lapsed}"
        self.touched.update(lapsed)
        for job_id in lapsed:
            job = self.jobs[job_id]
            definition = DEFINITIONS[job.type]
            if not job.started:
                # Not known to have started: back at once, the attempt given back.
                job.max_attempts += 1
                job.mark_start = True
                status = S.CANCELLED if job.cancel_requested else S.QUEUED
                wait = False
            else:
                job.crashes += 1
                job.errors += 1
                if job.cancel_requested:
                    status = S.CANCELLED
                elif job.crashes >= definition.max_crashes or job.attempts >= job.max_attempts:
                    status = S.FAILED
                else:
                    status = S.QUEUED
                # A crash waits the type's backoff: none for quick jobs, long for slow.
                wait = definition.retry.base > 0
            job.cancel_requested = False
            if status is S.QUEUED:
                job.worker = None
                self.make_ready(job, not wait)
            job.change(status, actor="rescuer", message=ANY)

    # -- the comparison -----------------------------------------------------------------

    async def read(self, every: bool) -> dict[str, Any]:
        """Everything at once (every job, every event), and the jobs the last step acted
        on (or, with `every`, all of them) one by one.
        """
        store = self.store
        page = await store.list_jobs(JobFilter(), limit=1000, cursor=None)
        everything = await store.events_after(0, limit=100_000)
        ids = sorted(self.jobs if every else self.touched & set(self.jobs))
        one_by_one = {job_id: await store.get(job_id) for job_id in ids}
        trails = {job_id: await store.events_after(0, job_id=job_id) for job_id in ids}
        expired = await store.expired(1000)
        stats = await store.stats()
        async with store.engine.connect() as conn:  # type: ignore[attr-defined]
            rows = (
                await conn.execute(text("SELECT id, status, lease_token, lease_until FROM jobs"))
            ).all()
        return {
            "listed": {job.id: job for job in page.jobs},
            "more": page.next_cursor,
            "everything": everything,
            "one_by_one": one_by_one,
            "trails": trails,
            "expired": expired,
            "stats": stats,
            "leases": {r[0]: (r[1], r[2], r[3]) for r in rows},
        }

    @invariant()
    def store_matches_model(self) -> None:
        self.compare(every=False)

    def teardown(self) -> None:
        self.compare(every=True)

    def compare(self, *, every: bool) -> None:
        seen = self.call(self.read, every)
        self.touched = set()
        assert seen["more"] is None
        records: dict[int, bj.Job] = seen["listed"]
        history: dict[int, list[Ev]] = {job_id: [] for job_id in self.jobs}
        for e in seen["everything"]:
            assert e.job_id in history, f"an event of job {e.job_id}, which is not in the model"
            history[e.job_id].append(Ev(e.kind.value, e.status, e.attempt, e.actor, e.message))
        # A job read on its own, and its events read on their own, are the same as read
        # among all the others.
        for job_id, record in seen["one_by_one"].items():
            assert record is not None, f"job {job_id} is gone"
            assert record == records.get(job_id), (record, records.get(job_id))
            trail = [
                Ev(e.kind.value, e.status, e.attempt, e.actor, e.message)
                for e in seen["trails"][job_id]
            ]
            assert trail == history[job_id], (trail, history[job_id])
        for job_id, job in self.jobs.items():
            record = records.get(job_id)
            assert record is not None, f"job {job_id} is gone"
            got = {
                "status": record.status,
                "attempts": record.attempts,
                "max_attempts": record.max_attempts,
                "errors": len(record.errors),
                "crashes": record.crashes,
                "cancel_requested": record.cancel_requested,
                "type": record.type,
                "queue": record.queue,
                "priority": record.priority,
                "unique_key": record.unique_key,
                "unique_until": record.unique_until,
                "input": record.input,
                "output": record.output,
                "progress": record.progress,
                "finished": record.finished_at is not None,
            }
            want = {
                "status": job.status,
                "attempts": job.attempts,
                "max_attempts": job.max_attempts,
                "errors": job.errors,
                "crashes": job.crashes,
                "cancel_requested": job.cancel_requested,
                "type": job.type,
                "queue": job.queue,
                "priority": job.priority,
                "unique_key": job.unique_key,
                "unique_until": "pruned" if job.keep_key else "finished",
                "input": job.input,
                "output": job.output,
                "progress": job.progress,
                "finished": job.status.is_final,
            }
            assert got == want, f"job {job_id}: store {got}, model {want}"
            if job.status is S.RUNNING:
                assert record.worker_id == job.worker, (record.worker_id, job.worker)
                assert 1 <= job.attempts <= job.max_attempts, job
            if job.status is S.QUEUED:
                assert job.attempts < job.max_attempts, f"job {job_id} queued with no attempt left"

            # A final job stays exactly as it is until it is retried.
            if job.status.is_final:
                dump = record.model_dump()
                before = self.final_records.setdefault(job_id, dump)
                assert dump == before, f"final job {job_id} changed: {before} -> {dump}"

            # Its audit trail is exactly what its changes wrote.
            trail = history[job_id]
            assert trail == job.trail, f"job {job_id}: audit trail {trail}, expected {job.trail}"

        # No other job.
        assert set(seen["leases"]) == set(self.jobs), (sorted(seen["leases"]), sorted(self.jobs))
        assert set(records) == set(self.jobs), (sorted(records), sorted(self.jobs))

        # Nothing runs without a lease, nothing else holds one.
        for job_id, (status, token, until) in seen["leases"].items():
            job = self.jobs[job_id]
            if status == S.RUNNING:
                assert token == job.token and until is not None, (job_id, token, until)
            else:
                assert token is None and until is None, f"{status} job {job_id} holds a lease"

        # `expired()` lists exactly the lapsed leases, as the model knows them.
        expired = {e.id: e for e in seen["expired"]}
        lapsed = {j.id: j for j in self.jobs.values() if j.status is S.RUNNING and j.lapsed}
        assert set(expired) == set(lapsed), f"expired {sorted(expired)}, lapsed {sorted(lapsed)}"
        for job_id, e in expired.items():
            job = lapsed[job_id]
            got_e = (
                e.type,
                e.lease_token,
                e.attempts,
                e.max_attempts,
                e.crashes,
                e.started,
                e.cancel_requested,
                e.worker_id,
            )
            want_e = (
                job.type,
                job.token,
                job.attempts,
                job.max_attempts,
                job.crashes,
                job.started,
                job.cancel_requested,
                job.worker,
            )
            assert got_e == want_e, f"expired job {job_id}: {got_e}, model {want_e}"

        # Each job is in exactly one status: the counts by status add up to the model's.
        counts: dict[S, int] = {}
        for job in self.jobs.values():
            counts[job.status] = counts.get(job.status, 0) + 1
        by_status = {s: n for s, n in seen["stats"].by_status.items() if n}
        assert by_status == counts, (by_status, counts)


@contextlib.contextmanager
def open_runtime(url: str, directory: Path) -> Iterator[tuple[BlockingPortal, bj.Runtime]]:
    """A runtime with the two job types, opened and used on one portal's event loop."""
    runtime = bj.Runtime(
        url,
        jobs=[quick, slow],
        load_entrypoints=False,
        artifacts=str(directory / "artifacts"),
    )
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(runtime) as rt,
    ):
        yield portal, rt


def test_job_state_machine(database_url: str, tmp_path: Path) -> None:
    with open_runtime(database_url, tmp_path) as (portal, rt):
        ctx = rt.maintenance().ctx
        run_state_machine_as_test(lambda: JobMachine(portal, rt, ctx), settings=SETTINGS)


def test_the_comparison_holds_on_a_fresh_store(database_url: str, tmp_path: Path) -> None:
    """The comparison itself holds on an empty database and after one enqueue (a check
    that the machine's reading of the store is sound before it is driven at random).
    """
    with open_runtime(database_url, tmp_path) as (portal, rt):
        machine = JobMachine(portal, rt, rt.maintenance().ctx)
        machine.store_matches_model()
        machine.enqueue(
            [
                ("sm.quick", "q1", 0, "k1", 2, False, "return_existing", False),
                ("sm.slow", "q2", 5, "k1", 1, False, "replace", False),
            ]
        )
        machine.store_matches_model()
        assert len(machine.jobs) == 1
        machine.teardown()
