"""Every attempt of a job, read from its audit trail.

A job row keeps its latest attempt; its `status` events keep them all: each `running`
event starts an attempt (its actor is the worker that claimed it), and the next status
event ends it, with the status it left the job in and why. The error of a failed attempt
is the job's error recorded for that attempt number.
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Attempt, EventKind, Job, JobEvent, JobStatus


def attempts_of(job: Job, events: Iterable[JobEvent]) -> list[Attempt]:
    """The attempts of `job` from its events (oldest first)."""
    errors = {e.attempt: e for e in job.errors}
    attempts: list[Attempt] = []
    current: Attempt | None = None
    for event in sorted(events, key=lambda e: e.seq):
        if event.kind is not EventKind.STATUS or event.job_id != job.id:
            continue
        if event.status is JobStatus.RUNNING:
            if current is not None:  # a start without an end: the trail was pruned
                attempts.append(current)
            current = Attempt(number=event.attempt, worker_id=event.actor, started_at=event.at)
            continue
        if current is None:
            continue
        attempts.append(
            current.model_copy(
                update={
                    "ended_at": event.at,
                    "status": event.status,
                    "message": event.message,
                    "error": errors.get(current.number),
                }
            )
        )
        current = None
    if current is not None:
        attempts.append(current)
    return attempts
