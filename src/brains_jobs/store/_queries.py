"""Queries built with SQLAlchemy Core that read the same on every backend."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select, text

from ..exceptions import ConfigurationError
from ..models import Durations, Job, JobPage, JobStatus, Stats
from .tables import jobs

if TYPE_CHECKING:
    from .records import JobFilter


def list_jobs(filters: JobFilter, *, limit: int, cursor: str | None, dialect: str) -> Select[Any]:
    """Jobs matching `filters`, newest first, after `cursor` (the last id of a page)."""
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(jobs.c.status == filters.status.value)
    if filters.type is not None:
        conditions.append(jobs.c.type == filters.type)
    if filters.queue is not None:
        conditions.append(jobs.c.queue == filters.queue)
    if filters.owner is not None:
        conditions.append(jobs.c.owner == filters.owner)
    if filters.created_after is not None:
        conditions.append(jobs.c.created_at > filters.created_after)
    if filters.created_before is not None:
        conditions.append(jobs.c.created_at < filters.created_before)
    if filters.tag is not None:
        if dialect == "sqlite":
            each = func.json_each(jobs.c.tags).table_valued("value")
            conditions.append(
                exists(select(1).select_from(each).where(each.c.value == filters.tag))
            )
        else:
            has_tag = text("jobs.tags::jsonb ? :tag").bindparams(tag=filters.tag)
            conditions.append(has_tag)  # type: ignore[arg-type]
    if cursor is not None:
        try:
            after = int(cursor)
        except ValueError:
            raise ConfigurationError(f"invalid cursor {cursor!r}") from None
        conditions.append(jobs.c.id < after)
    return select(jobs).where(and_(True, *conditions)).order_by(jobs.c.id.desc()).limit(limit)


def stats() -> Select[str, str, int]:
    """Counts grouped by type and status."""
    return select(jobs.c.type, jobs.c.status, func.count()).group_by(jobs.c.type, jobs.c.status)


# Usage summed by (type, owner, name), and the run times of the latest succeeded jobs of
# each type, in seconds (`{sample}` of them at most).
USAGE = {
    "sqlite": """
SELECT j.type, j.owner, u.key, sum(u.value) FROM jobs AS j, json_each(j.usage) AS u
 WHERE j.usage IS NOT NULL GROUP BY 1, 2, 3
""",
    "postgresql": """
SELECT j.type, j.owner, u.key, sum(u.value::numeric)::float8
  FROM {{schema}}.jobs AS j, jsonb_each_text(j.usage) AS u
 WHERE j.usage IS NOT NULL GROUP BY 1, 2, 3
""",
}
DURATIONS = {
    "sqlite": """
SELECT type, seconds FROM (
    SELECT type, finished_at - started_at AS seconds,
           row_number() OVER (PARTITION BY type ORDER BY finished_at DESC) AS n
      FROM jobs INDEXED BY jobs_finished
     WHERE status = 'succeeded' AND finished_at IS NOT NULL AND started_at IS NOT NULL)
 WHERE n <= {sample}
""",
    "postgresql": """
SELECT type, seconds FROM (
    SELECT type, extract(epoch FROM finished_at - started_at)::float8 AS seconds,
           row_number() OVER (PARTITION BY type ORDER BY finished_at DESC) AS n
      FROM {{schema}}.jobs
     WHERE status = 'succeeded' AND finished_at IS NOT NULL AND started_at IS NOT NULL) AS d
 WHERE n <= {sample}
""",
}


def stats_from_rows(
    counts: Iterable[Sequence[Any]],
    usage: Iterable[Sequence[Any]] = (),
    durations: Iterable[Sequence[Any]] = (),
) -> Stats:
    """`Stats` from (type, status, count), (type, owner, name, sum) and (type, seconds)
    rows.
    """
    by_type: dict[str, dict[JobStatus, int]] = {}
    for job_type, status, n in counts:
        by_type.setdefault(job_type, {})[JobStatus(status)] = n
    usage_by_type: dict[str, dict[str, float]] = {}
    usage_by_owner: dict[str, dict[str, float]] = {}
    for job_type, owner, name, total in usage:
        for table, key in ((usage_by_type, job_type), (usage_by_owner, owner or "")):
            sums = table.setdefault(key, {})
            sums[name] = sums.get(name, 0) + _number(total)
    samples: dict[str, list[float]] = {}
    for job_type, seconds in durations:
        samples.setdefault(job_type, []).append(max(0.0, float(seconds)))
    return Stats(
        by_type=by_type,
        usage=usage_by_type,
        usage_by_owner=usage_by_owner,
        durations={t: _durations(v) for t, v in samples.items()},
    )


def _number(value: Any) -> float:
    """A summed amount: whole numbers stay whole."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _durations(seconds: list[float]) -> Durations:
    ordered = sorted(seconds)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return Durations(
        count=len(ordered), p50=rank(0.5), p95=rank(0.95), p99=rank(0.99), max=ordered[-1]
    )


def page(found: list[Job], limit: int) -> JobPage:
    """One page of jobs; a full page has a cursor to the next."""
    more = len(found) == limit and limit > 0
    return JobPage(jobs=found, next_cursor=str(found[-1].id) if more else None)
