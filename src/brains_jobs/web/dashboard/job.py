"""One job's page (live progress, timeline, attempts, input and output, relatives,
artifacts, usage), its actions, and the download of its artifacts.

A job's artifacts are the `ArtifactRef`s in its output whose key lies under the job's own
folder of the artifact store; a reference to another job's artifact is listed without a
link, so that an output written by hand cannot reach someone else's files.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from pydantic import ValidationError
from starlette.responses import Response

from ...artifacts import ArtifactNotFound, ArtifactRef
from ...attempts import attempts_of
from ...exceptions import InvalidJobOption, JobNotFound
from ...models import FINAL_STATUSES, Job, JobStatus
from ...runtime import Runtime
from ..auth import Principal
from ..dependencies import JobId, RuntimeDep, visible_job
from ..errors import ApiError
from .render import PREFIX, Posted, page, redirect, viewer, writer_form

router = APIRouter(prefix=PREFIX, include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
WriterForm = Annotated[Posted, Depends(writer_form)]

#: Artifacts shown inline (images a browser renders without running anything).
INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
ARTIFACT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}
#: The most events the page lists (the oldest first).
EVENTS_SHOWN = 1000
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def artifacts(rt: Runtime, job: Job) -> list[tuple[ArtifactRef, bool]]:
    """The artifact references in the job's output, each with whether it is the job's
    own (and so may be downloaded from its page).
    """
    found: list[tuple[ArtifactRef, bool]] = []
    prefix = f"{rt.artifacts.namespace}/{job.id}/"

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if {"key", "name", "content_type", "size", "sha256"} <= value.keys():
                try:
                    ref = ArtifactRef.model_validate(value)
                except ValidationError:
                    pass
                else:
                    rest = ref.key[len(prefix) :]
                    own = ref.key.startswith(prefix) and _FILE.fullmatch(rest) is not None
                    found.append((ref, own))
                    return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(job.output)
    return found[:100]


async def children(rt: Runtime, job: Job, principal: Principal) -> list[Job]:
    """The jobs enqueued by this one (`parent_id`), among those created while it lived."""
    end = (job.finished_at or datetime.now(UTC)) + timedelta(seconds=5)
    found = await rt.list(
        created_after=job.created_at,
        created_before=end,
        owner=None if principal.sees_all else principal.user,
        limit=1000,
    )
    return [j for j in found.jobs if j.parent_id == job.id][:50]


def actions(job: Job) -> set[str]:
    """The actions that apply to the job in its status."""
    status = job.status
    found = {"resubmit"}
    if status in FINAL_STATUSES:
        if status is not JobStatus.SUCCEEDED:
            found |= {"retry", "complete"}
    else:
        found |= {"fail", "complete", "move"}
        if not job.cancel_requested:
            found.add("cancel")
    return found


@router.get("/jobs/{job_id}")
async def job_page(job_id: JobId, request: Request, rt: RuntimeDep, principal: Viewer) -> Response:
    """The job, live: progress over server-sent events, the timeline and the attempts."""
    last_seq = await rt.store.last_seq()
    job = await visible_job(rt, principal, job_id)
    read = await rt.store.events_after(0, job_id=job_id, limit=EVENTS_SHOWN)
    # The page shows the job as of `last_seq` (read first); whatever came later, even
    # while it was being read, reaches it over the event stream.
    events = [e for e in read if e.seq <= last_seq]
    # The attempts come from the same events, unless there were more than one page.
    attempts = attempts_of(job, read) if len(read) < EVENTS_SHOWN else await rt.attempts(job)
    parent = original = None
    for ref in (job.parent_id, job.original_id):
        if ref is None:
            continue
        try:
            found = await visible_job(rt, principal, ref)
        except JobNotFound:
            continue
        if ref == job.parent_id:
            parent = found
        else:
            original = found
    return page(
        request,
        "job.html",
        principal,
        nav="jobs",
        job=job,
        final=job.status in FINAL_STATUSES,
        events=events,
        events_capped=len(events) == EVENTS_SHOWN,
        after=last_seq,
        attempts=attempts,
        parent=parent,
        original=original,
        children=await children(rt, job, principal),
        artifacts=artifacts(rt, job),
        inline=INLINE,
        actions=actions(job) if principal.can_write else set(),
    )


@router.post("/jobs/{job_id}/{action}")
async def act(
    job_id: JobId,
    action: Annotated[str, Path(pattern="^(cancel|retry|resubmit|complete|fail|move)$")],
    request: Request,
    rt: RuntimeDep,
    posted: WriterForm,
) -> Response:
    """Cancel, retry, resubmit, complete, fail or move the job, then show it again."""
    actor = posted.principal.user
    job = await visible_job(rt, posted.principal, job_id)
    if action == "cancel":
        await rt.cancel(job_id, actor=actor)
        return redirect(request, f"/jobs/{job_id}", "cancelled")
    if action == "retry":
        await rt.retry(job_id, actor=actor)
        return redirect(request, f"/jobs/{job_id}", "retried")
    if action == "resubmit":
        handle = await rt.resubmit(job_id, actor=actor)
        return redirect(request, f"/jobs/{handle.id}", "resubmitted")
    if action == "complete":
        output = _json(posted.get("output").strip() or "{}", "output")
        if job.tracked and job.status is JobStatus.RUNNING:
            await rt.complete(job_id, output, actor=actor)
        else:
            await rt.force_complete(job_id, output, actor=actor)
        return redirect(request, f"/jobs/{job_id}", "completed")
    if action == "fail":
        reason = posted.get("reason").strip()
        if not reason:
            raise InvalidJobOption("reason", "say why the job fails")
        if job.tracked and job.status is JobStatus.RUNNING:
            await rt.fail(job_id, reason, actor=actor)
        else:
            await rt.force_fail(job_id, reason, actor=actor)
        return redirect(request, f"/jobs/{job_id}", "failed")
    queue = posted.get("queue").strip() or None
    priority = None
    if posted.get("priority").strip():
        try:
            priority = int(posted.get("priority"))
        except ValueError:
            raise InvalidJobOption("priority", "expected a whole number") from None
    await rt.move(job_id, queue=queue, priority=priority, actor=actor)
    return redirect(request, f"/jobs/{job_id}", "moved")


def _json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidJobOption(name, f"not JSON: {exc.msg} at line {exc.lineno}") from None


@router.get("/jobs/{job_id}/artifacts/{index}")
async def artifact(
    job_id: JobId,
    index: Annotated[int, Path(ge=0, lt=100)],
    rt: RuntimeDep,
    principal: Viewer,
) -> Response:
    """The bytes of one of the job's own artifacts: images inline, anything else as a
    download.
    """
    job = await visible_job(rt, principal, job_id)
    own = [ref for ref, mine in artifacts(rt, job) if mine]
    if index >= len(own):
        raise ApiError(404, "NotFound", f"job {job_id} has no artifact {index}")
    ref = own[index]
    try:
        data = await rt.artifacts.get(ref)
    except ArtifactNotFound:
        return page_gone()
    inline = ref.content_type in INLINE
    kind = ref.content_type if inline or ref.content_type == "application/pdf" else None
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", ref.name) or "artifact"
    disposition = "inline" if inline else "attachment"
    headers = {
        **ARTIFACT_HEADERS,
        "Content-Disposition": (
            f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(ref.name)}"
        ),
    }
    return Response(data, media_type=kind or "application/octet-stream", headers=headers)


def page_gone() -> Response:
    """An artifact whose bytes are no longer stored."""
    return Response("the artifact is no longer stored", status_code=410, headers=ARTIFACT_HEADERS)
