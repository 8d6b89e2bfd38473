"""Dependencies: what becomes of the jobs that wait for a job once it is final.

Decided here, once for every store; a store gives access to its edges and waiting jobs
inside the transaction that finished the parents (`DependencyAccess`) and applies the
decisions. The rules:

- each final parent takes one from its dependents' count of pending parents;
- a parent that did not succeed (failed, cancelled, skipped) skips its dependents whose
  edge says `skip` (the default) at once; a skipped job is final, so its own dependents
  are resolved in turn (transitively, in the same transaction);
- a dependent whose count reaches zero and was not skipped is queued; a workflow step
  takes its input from its parent's output (`input_from="parent"`) or from all its
  parents' (`input_from="parents"`: `{"ids", "statuses", "results"}` by parent id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..exceptions import InvalidJobOption
from ..models import JobStatus
from .records import Enqueued, NewJob

ON_FAILURE = ("skip", "run")


@dataclass(frozen=True, slots=True)
class Edge:
    """`child_id` waits for `parent_id`; `on_failure` is `skip` or `run`."""

    parent_id: int
    child_id: int
    on_failure: str = "skip"


class DependencyAccess(Protocol):
    """A store's edges and waiting jobs, inside the transaction that resolves them."""

    async def edges(self, parent_ids: Sequence[int]) -> list[Edge]:
        """The edges from these parents."""
        ...

    async def waiting(self, child_ids: Sequence[int]) -> dict[int, int]:
        """The children among `child_ids` still waiting, with their pending count."""
        ...

    async def settle(
        self, decrements: Mapping[int, int], queued: Sequence[int], skipped: Mapping[int, str]
    ) -> None:
        """Take `decrements` from the children's pending counts; queue `queued` (wiring
        their input when they take it from their parents); skip `skipped` with the
        message given.
        """
        ...

    async def link(self, edges: Sequence[Edge]) -> dict[int, str]:
        """Record new edges and mark their parents as having children; return the
        parents' statuses (a parent that does not exist is missing).
        """
        ...


async def link_new(
    access: DependencyAccess, wanted: Sequence[NewJob], result: Sequence[Enqueued]
) -> list[JobStatus]:
    """Record the edges of the jobs just inserted, and resolve them at once for parents
    that are final already. A parent that does not exist is an `InvalidJobOption`.
    """
    edges = [
        Edge(parent, row.id, job.on_parent_failure)
        for job, row in zip(wanted, result, strict=True)
        if row.created
        for parent in job.depends_on
    ]
    if not edges:
        return []
    statuses = await access.link(edges)
    missing = sorted({e.parent_id for e in edges} - statuses.keys())
    if missing:
        raise InvalidJobOption("depends_on", f"no job with id {missing[0]}")
    final = {p: JobStatus(s) for p, s in statuses.items() if JobStatus(s).is_final}
    if not final:
        return []
    return await resolve(access, final, [e for e in edges if e.parent_id in final])


async def sweep(
    access: DependencyAccess, rows: Sequence[tuple[int, int, int, str, str]]
) -> list[JobStatus]:
    """Settle waiting jobs whose count disagrees with their parents (a resolution that
    a crash interrupted): rows are (child, pending count, parent, parent's status, edge
    policy) for every parent of each such child.
    """
    children: dict[int, list[tuple[int, int, JobStatus, str]]] = {}
    for child, pending, parent, status, on_failure in rows:
        children.setdefault(child, []).append((pending, parent, JobStatus(status), on_failure))
    decrements: dict[int, int] = {}
    queued: list[int] = []
    skipped: dict[int, str] = {}
    for child, parents in sorted(children.items()):
        pending = parents[0][0]
        open_parents = sum(1 for _, _, status, _ in parents if not status.is_final)
        failed = [
            (parent, status)
            for _, parent, status, policy in parents
            if status.is_final and status is not JobStatus.SUCCEEDED and policy == "skip"
        ]
        if failed:
            parent, status = failed[0]
            skipped[child] = f"skipped: parent job {parent} ended {status.value}"
        elif open_parents == 0:
            queued.append(child)
        decrements[child] = pending - open_parents
    if not decrements:
        return []
    await access.settle(decrements, queued, skipped)
    cascade = await resolve(access, dict.fromkeys(skipped, JobStatus.SKIPPED))
    return [JobStatus.QUEUED] * len(queued) + [JobStatus.SKIPPED] * len(skipped) + cascade


def final_parents(rows: Sequence[Sequence[object]]) -> dict[int, JobStatus]:
    """From (id, has_children, status) rows just written: the final parents."""
    found: dict[int, JobStatus] = {}
    for job_id, has_children, status in rows:
        if has_children and JobStatus(str(status)).is_final:
            found[int(str(job_id))] = JobStatus(str(status))
    return found


async def resolve(
    access: DependencyAccess,
    finished: Mapping[int, JobStatus],
    edges: Sequence[Edge] | None = None,
) -> list[JobStatus]:
    """Resolve the dependents of the `finished` parents (id -> final status), through
    `edges` if given (new edges from parents already final) or all their edges.
    Returns the statuses the dependents took (which signals to fire).
    """
    statuses: list[JobStatus] = []
    frontier = {i: s for i, s in finished.items() if s.is_final}
    given = edges
    while frontier:
        found = list(given) if given is not None else await access.edges(list(frontier))
        given = None
        found = [e for e in found if e.parent_id in frontier]
        if not found:
            break
        pending = await access.waiting(sorted({e.child_id for e in found}))
        decrements: Counter[int] = Counter()
        skipped: dict[int, str] = {}
        for edge in sorted(found, key=lambda e: (e.child_id, e.parent_id)):
            if edge.child_id not in pending:
                continue
            decrements[edge.child_id] += 1
            status = frontier[edge.parent_id]
            if status is not JobStatus.SUCCEEDED and edge.on_failure == "skip":
                skipped.setdefault(
                    edge.child_id, f"skipped: parent job {edge.parent_id} ended {status.value}"
                )
        queued = [
            child
            for child, taken in sorted(decrements.items())
            if child not in skipped and pending[child] - taken <= 0
        ]
        if decrements:
            await access.settle(decrements, queued, skipped)
        statuses += [JobStatus.QUEUED] * len(queued) + [JobStatus.SKIPPED] * len(skipped)
        frontier = dict.fromkeys(skipped, JobStatus.SKIPPED)
    return statuses
