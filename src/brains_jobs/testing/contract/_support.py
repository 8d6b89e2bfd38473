"""Small helpers the contract tests share: building jobs, claiming, reading history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ...models import EventKind, Job, JobEvent, JobStatus
from ...store import ClaimedJob, Outcome, Store
from ...store.records import NewJob

S = JobStatus
K = EventKind

TYPE = "contract.echo"
OTHER_TYPE = "contract.other"
QUEUE = "default"
WORKER = "contract-worker"

# Text that a store must keep exactly: accents, other scripts, emoji, and one long string.
UNUSUAL = "héllo wörld ✓ 日本語 Ελληνικά 🚀🎉👩‍💻"
LONG = "αβγ🙂" * 25_000


def job(n: int = 0, **fields: Any) -> NewJob:
    """A job of the contract's type in the default queue; `fields` override."""
    values: dict[str, Any] = {
        "type": TYPE,
        "queue": QUEUE,
        "priority": 0,
        "input": json.dumps({"n": n}),
        "max_attempts": 3,
    }
    values.update(fields)
    return NewJob(**values)


def after(seconds: float) -> datetime:
    """A moment `seconds` from now (negative: in the past)."""
    return datetime.now(UTC) + timedelta(seconds=seconds)


def error(attempt: int = 1, message: str = "boom") -> dict[str, Any]:
    """An attempt's error as the worker records it."""
    return {
        "attempt": attempt,
        "type": "ValueError",
        "message": message,
        "traceback": "Traceback (most recent call last): ...",
        "at": datetime.now(UTC).isoformat(),
    }


async def enqueue(store: Store, *jobs: NewJob) -> list[int]:
    """Insert `jobs`, each one created; their ids."""
    result = await store.enqueue(jobs)
    assert all(e.created for e in result), result
    return [e.id for e in result]


async def claim(
    store: Store,
    *,
    limit: int = 10,
    lease: float = 30.0,
    types: Sequence[str] = (TYPE,),
    queues: Sequence[str] | None = None,
    isolated: bool = False,
    worker_id: str = WORKER,
) -> list[ClaimedJob]:
    """One claim with the contract's defaults."""
    return await store.claim(
        worker_id=worker_id,
        queues=queues,
        types=types,
        limit=limit,
        lease=lease,
        isolated=isolated,
    )


async def claim_ids(store: Store, ids: Sequence[int], *, lease: float = 30.0) -> list[ClaimedJob]:
    """Claim every ready job and check that exactly `ids` were claimed; by id."""
    claimed = await claim(store, limit=len(ids) + 10, lease=lease)
    assert sorted(c.id for c in claimed) == sorted(ids)
    return sorted(claimed, key=lambda c: c.id)


async def running(store: Store, n: int = 1, *, lease: float = 30.0) -> list[ClaimedJob]:
    """`n` fresh jobs, claimed (one lease token for them all)."""
    ids = await enqueue(store, *(job(i) for i in range(n)))
    return await claim_ids(store, ids, lease=lease)


async def succeed(store: Store, claimed: ClaimedJob, output: str = "null") -> None:
    """Finish a claimed job with a success."""
    done = Outcome(claimed.id, claimed.lease_token, S.SUCCEEDED, output=output, attempt=1)
    assert await store.finish([done]) == []


async def get(store: Store, job_id: int) -> Job:
    """The job, which must exist."""
    found = await store.get(job_id)
    assert found is not None, f"job {job_id} not found"
    return found


async def history(store: Store, job_id: int | None = None, *, after_seq: int = 0) -> list[JobEvent]:
    """Every event (of one job) after `after_seq`, oldest first."""
    return await store.events_after(after_seq, job_id=job_id, limit=100_000)


def trail(events: Sequence[JobEvent]) -> list[tuple[int, EventKind, JobStatus | None, str | None]]:
    """Events as (job, kind, status, message), the shape most assertions compare."""
    return [(e.job_id, e.kind, e.status, e.message) for e in events]


def seconds_from_now(moment: datetime) -> float:
    """How far in the future `moment` is (negative: past)."""
    return (moment - datetime.now(UTC)).total_seconds()
