"""Turning database rows into records; shared by every backend."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..models import AttemptError, EventKind, Job, JobEvent, JobStatus, TemplateInfo, WorkerInfo


def _json(value: Any, default: Any) -> Any:
    """Decoded JSON; text that is not JSON (a row written by hand) comes back as it is,
    so that reading the job never fails (running it does, as invalid input).
    """
    if value is None:
        return default
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value if isinstance(value, str) else value.decode(errors="replace")
    return value


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), UTC)


def _when_required(value: Any) -> datetime:
    result = _when(value)
    assert result is not None
    return result


def job_from_row(row: Mapping[Any, Any]) -> Job:
    """A `Job` from a `jobs` row (JSON columns as text or decoded, times as either form)."""
    return Job(
        id=row["id"],
        type=row["type"],
        queue=row["queue"],
        priority=row["priority"],
        status=JobStatus(row["status"]),
        input=_json(row["input"], None),
        output=_json(row["output"], None),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        errors=[AttemptError.model_validate(e) for e in _json(row["errors"], [])],
        progress=row["progress"],
        progress_message=row["progress_message"],
        unique_key=row["unique_key"],
        unique_until="pruned" if row["unique_keep"] else "finished",
        tags=_json(row["tags"], []),
        metadata=_json(row["metadata"], {}),
        owner=row["owner"],
        parent_id=row["parent_id"],
        original_id=row["original_id"],
        input_from=row["input_from"],
        worker_id=row["worker_id"],
        cancel_requested=bool(row["cancel_requested"]),
        crashes=row["crashes"],
        version=row["version"],
        tracked=bool(row["tracked"]),
        track_ttl=row["track_ttl"],
        usage=_json(row["usage"], {}),
        created_at=_when_required(row["created_at"]),
        run_at=_when_required(row["run_at"]),
        started_at=_when(row["started_at"]),
        finished_at=_when(row["finished_at"]),
        updated_at=_when_required(row["updated_at"]),
    )


def event_from_row(row: Mapping[Any, Any]) -> JobEvent:
    """A `JobEvent` from a `job_events` row."""
    status = row["status"]
    return JobEvent(
        seq=row["seq"],
        job_id=row["job_id"],
        job_type=row["job_type"],
        kind=EventKind(row["kind"]),
        status=JobStatus(status) if status is not None else None,
        attempt=row["attempt"],
        progress=row["progress"],
        message=row["message"],
        data=_json(row["data"], None),
        actor=row["actor"],
        at=_when_required(row["at"]),
    )


def iso(ts: float) -> str:
    """Epoch seconds as an ISO 8601 UTC string (for JSON documents)."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def worker_from_row(row: Mapping[Any, Any]) -> WorkerInfo:
    """A `WorkerInfo` from a `workers` row (JSON columns as text or decoded)."""
    return WorkerInfo(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        queues=_json(row["queues"], []),
        types=_json(row["types"], []),
        concurrency=row["concurrency"],
        started_at=_when_required(row["started_at"]),
        heartbeat_at=_when_required(row["heartbeat_at"]),
        running=row["running"],
        version=row["version"],
    )


def template_from_row(row: Mapping[Any, Any]) -> TemplateInfo:
    """A `TemplateInfo` from a `templates` row (JSON columns as text or decoded); its
    options by name, whichever order the database keeps them in.
    """
    return TemplateInfo(
        name=row["name"],
        type=row["type"],
        input=_json(row["input"], {}),
        options=dict(sorted(_json(row["options"], {}).items())),
        created_at=_when_required(row["created_at"]),
        updated_at=_when_required(row["updated_at"]),
    )
