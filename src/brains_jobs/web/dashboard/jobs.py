"""The jobs table (filters, cursor pages), enqueueing from a form, and bulk actions on a
selection or on the filter (a dry run first, then the change once confirmed).

Times in the filter are ISO 8601; one without a zone (what a browser's date-time field
sends) is read as UTC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import Response

from ...exceptions import InvalidJobOption
from ...models import JobPage, JobStatus
from ..auth import Principal
from ..bodies import BulkBody
from ..bulk import BulkAction, run_bulk
from ..dependencies import RuntimeDep
from .render import PREFIX, Posted, page, redirect, viewer, writer_form

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
WriterForm = Annotated[Posted, Depends(writer_form)]

FILTERS = ("type", "status", "queue", "owner", "tag", "created_after", "created_before")
PAGE_SIZES = (25, 50, 100, 200)


def _time(name: str, value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidJobOption(name, "expected a date and time (ISO 8601)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_filters(given: Mapping[str, str]) -> dict[str, Any]:
    """The filters of `given` that are set, checked: a `JobStatus`, aware datetimes."""
    found: dict[str, Any] = {}
    for name in FILTERS:
        value = (given.get(name) or "").strip()
        if not value:
            continue
        if len(value) > 256:
            raise InvalidJobOption(name, "too long")
        if name == "status":
            try:
                found[name] = JobStatus(value)
            except ValueError:
                raise InvalidJobOption(name, f"unknown status {value!r}") from None
        elif name.startswith("created_"):
            found[name] = _time(name, value)
        else:
            found[name] = value
    return found


def _own(principal: Principal, filters: dict[str, Any]) -> dict[str, Any] | None:
    """The filters a user may use (its own jobs only); None: nothing can match."""
    if principal.sees_all:
        return filters
    if filters.get("owner", principal.user) != principal.user:
        return None
    return {**filters, "owner": principal.user}


@router.get("/jobs")
async def jobs_page(request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """Jobs matching the filter, newest first, a page at a time."""
    query = request.query_params
    filters = parse_filters(query)
    try:
        limit = int(query.get("limit") or 50)
    except ValueError:
        limit = 50
    limit = limit if limit in PAGE_SIZES else 50
    cursor = query.get("cursor") or None
    own = _own(principal, filters)
    found = JobPage(jobs=[]) if own is None else await rt.list(**own, limit=limit, cursor=cursor)
    raw = {name: query.get(name, "") for name in FILTERS}
    kept = {k: v for k, v in raw.items() if v}
    next_query = None
    if found.next_cursor:
        next_query = urlencode({**kept, "limit": limit, "cursor": found.next_cursor})
    return page(
        request,
        "jobs.html",
        principal,
        nav="jobs",
        jobs=found.jobs,
        filters=raw,
        kept=kept,
        limit=limit,
        page_sizes=PAGE_SIZES,
        next_query=next_query,
        first_page=cursor is None,
        bounded=bool(kept.get("created_after") or kept.get("created_before")),
        types=[d.name for d in rt.registry],
    )


@router.post("/jobs/new")
async def enqueue(request: Request, rt: RuntimeDep, posted: WriterForm) -> Response:
    """Enqueue a job of the chosen type with the JSON input given, owned by the caller."""
    definition = rt.registry.get(posted.get("type"))
    text = posted.get("input").strip() or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJobOption("input", f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(value, dict):
        raise InvalidJobOption("input", "expected a JSON object")
    options: dict[str, Any] = {}
    if posted.get("queue").strip():
        options["queue"] = posted.get("queue").strip()
    if posted.get("priority").strip():
        try:
            options["priority"] = int(posted.get("priority"))
        except ValueError:
            raise InvalidJobOption("priority", "expected a whole number") from None
    handle = await rt.enqueue(definition, value, owner=posted.principal.user, **options)
    return redirect(request, f"/jobs/{handle.id}", "enqueued")


@router.post("/jobs/bulk")
async def bulk(request: Request, rt: RuntimeDep, posted: WriterForm) -> Response:
    """Retry or cancel the selected jobs (`ids`) or those of the filter: a dry run unless
    `confirm` is set, then the change.
    """
    try:
        action = BulkAction(posted.get("action"))
    except ValueError:
        raise InvalidJobOption("action", "expected retry or cancel") from None
    confirmed = posted.get("confirm") == "1"
    scope = "ids" if posted.get("scope") == "ids" else "filter"
    hidden: list[tuple[str, str]] = [("action", action.value), ("scope", scope)]
    if scope == "ids":
        try:
            ids = [int(i) for i in posted.getlist("ids")]
        except ValueError:
            raise InvalidJobOption("ids", "expected job ids") from None
        if not ids:
            raise InvalidJobOption("ids", "select at least one job")
        fields: dict[str, Any] = {"ids": ids}
        hidden += [("ids", str(i)) for i in ids]
    else:
        raw = {name: posted.get(name) for name in FILTERS}
        fields = parse_filters(raw)
        hidden += [(k, v) for k, v in raw.items() if v]
    try:
        body = BulkBody(**fields, dry_run=not confirmed)
    except ValidationError as exc:
        problem = "; ".join(str(e["msg"]) for e in exc.errors())
        raise InvalidJobOption("ids" if scope == "ids" else "filter", problem) from None
    result = await run_bulk(rt, posted.principal, action, body)
    return page(
        request,
        "bulk.html",
        posted.principal,
        nav="jobs",
        result=result,
        hidden=hidden,
        scope=scope,
    )
