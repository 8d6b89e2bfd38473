"""Queries built with SQLAlchemy Core that read the same on every backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, select, text

from ..exceptions import ConfigurationError
from ..models import Job, JobPage, JobStatus, Stats
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


def stats_from_rows(rows: Iterable[Sequence[Any]]) -> Stats:
    """`Stats` from (type, status, count) rows."""
    by_type: dict[str, dict[JobStatus, int]] = {}
    for job_type, status, n in rows:
        by_type.setdefault(job_type, {})[JobStatus(status)] = n
    return Stats(by_type=by_type)


def page(found: list[Job], limit: int) -> JobPage:
    """One page of jobs; a full page has a cursor to the next."""
    more = len(found) == limit and limit > 0
    return JobPage(jobs=found, next_cursor=str(found[-1].id) if more else None)
