"""Workflows: jobs that wait for other jobs (`depends_on` at enqueue), chains whose
steps take the previous step's output, and groups whose callback gets every output.

Each is enqueued in one transaction, with its ids reserved first; a step is `waiting`
until its parents are final, and is queued (or skipped) in the transaction that
finishes its last parent (see `brains_jobs.store.dependencies`).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel

from ..definitions import Bound, GroupResults, JobDefinition
from ..exceptions import InvalidJobOption
from ..handle import JobHandle
from ..models import JobStatus
from ..store.records import NewJob
from .base import RuntimeBase

A = TypeVar("A", bound=BaseModel)
B = TypeVar("B", bound=BaseModel)
C = TypeVar("C", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)
E = TypeVar("E", bound=BaseModel)
F = TypeVar("F", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


class GroupHandle(Generic[R]):
    """A group: its members, and the callback that runs once all are final (if any)."""

    def __init__(self, members: list[JobHandle[Any]], callback: JobHandle[R] | None) -> None:
        self.members = members
        self.callback = callback

    async def status(self) -> JobStatus:
        """The callback's status once it runs; before, `running` while any member is not
        final, and `waiting` when all are (the callback is being queued).
        """
        if self.callback is not None:
            status = await self.callback.status()
            if status is not JobStatus.WAITING:
                return status
        statuses = [await m.status() for m in self.members]
        if any(not s.is_final for s in statuses):
            return JobStatus.RUNNING if JobStatus.RUNNING in statuses else JobStatus.QUEUED
        return JobStatus.WAITING if self.callback is not None else JobStatus.SUCCEEDED

    async def progress(self) -> float:
        """The mean progress of the members (a final member counts as done)."""
        total = 0.0
        for member in self.members:
            job = await member.get()
            total += 1.0 if job.status.is_final else (job.progress or 0.0)
        return total / len(self.members) if self.members else 1.0

    async def result(self, timeout: float | None = None) -> R:
        """The callback's typed output (`JobFailed`, `JobCancelled` as for any job)."""
        if self.callback is None:
            raise TypeError("this group has no callback: read its members' results")
        return await self.callback.result(timeout)


class WorkflowsMixin(RuntimeBase):
    """`chain` and `group`."""

    @overload
    async def chain(self, a: Bound[Any, B], b: JobDefinition[B, C], /) -> JobHandle[C]: ...

    @overload
    async def chain(
        self, a: Bound[Any, B], b: JobDefinition[B, C], c: JobDefinition[C, D], /
    ) -> JobHandle[D]: ...

    @overload
    async def chain(
        self,
        a: Bound[Any, B],
        b: JobDefinition[B, C],
        c: JobDefinition[C, D],
        d: JobDefinition[D, E],
        /,
    ) -> JobHandle[E]: ...

    @overload
    async def chain(
        self,
        a: Bound[Any, B],
        b: JobDefinition[B, C],
        c: JobDefinition[C, D],
        d: JobDefinition[D, E],
        e: JobDefinition[E, F],
        /,
    ) -> JobHandle[F]: ...

    async def chain(
        self, first: Bound[Any, Any], /, *steps: JobDefinition[Any, Any]
    ) -> JobHandle[Any]:
        """Enqueue `first` and then each step (up to five in all), each taking the
        previous step's output as its input: mypy checks that each step's input model
        is the previous step's output model. A step that fails skips the rest. Returns
        the last step's handle; `chain_steps` takes any number of steps, untyped.
        """
        handles = await self.chain_steps(first, *steps)
        return handles[-1]

    async def chain_steps(
        self, first: Bound[Any, Any], /, *steps: JobDefinition[Any, Any]
    ) -> builtins.list[JobHandle[Any]]:
        """`chain`, returning every step's handle."""
        _, head = self.enqueuer.prepare(first.definition, first.input, first.options)
        _check_key(head)
        ids = await self.store.reserve_ids(1 + len(steps))
        head.id = ids[0]
        news = [head]
        for i, step in enumerate(steps, 1):
            new = self.enqueuer.step(step, {}, depends_on=(ids[i - 1],), input_from="parent")
            new.id = ids[i]
            news.append(new)
        rows = await self._publish(news)
        definitions = [first.definition, *steps]
        return [JobHandle(self.source, row.id, d) for row, d in zip(rows, definitions, strict=True)]

    @overload
    async def group(
        self,
        members: Sequence[Bound[Any, Out]],
        *,
        then: JobDefinition[GroupResults[Out], R],
        on_member_failure: str = "skip",
        **options: Any,
    ) -> GroupHandle[R]: ...

    @overload
    async def group(
        self,
        members: Sequence[Bound[Any, Out]],
        *,
        then: None = None,
        on_member_failure: str = "skip",
        **options: Any,
    ) -> GroupHandle[Any]: ...

    async def group(
        self,
        members: Sequence[Bound[Any, Any]],
        *,
        then: JobDefinition[Any, Any] | None = None,
        on_member_failure: str = "skip",
        **options: Any,
    ) -> GroupHandle[Any]:
        """Enqueue `members` at once and, with `then`, a callback that runs once when all
        of them are final, with a `GroupResults` of their outputs as its input. A member
        that fails skips the callback (`on_member_failure="skip"`), or the callback runs
        anyway and finds the failure in its input's `statuses` (`"run"`). `options` are
        the callback's enqueue options.
        """
        ids = await self.store.reserve_ids(len(members) + (then is not None))
        news = []
        for i, member in enumerate(members):
            _, new = self.enqueuer.prepare(member.definition, member.input, member.options)
            _check_key(new)
            new.id = ids[i]
            news.append(new)
        if then is not None:
            callback = self.enqueuer.step(
                then, options, depends_on=tuple(ids[: len(members)]), input_from="parents"
            )
            callback.id = ids[-1]
            callback.on_parent_failure = on_member_failure
            news.append(callback)
        rows = await self._publish(news)
        handles = [
            JobHandle(self.source, row.id, m.definition)
            for row, m in zip(rows[: len(members)], members, strict=True)
        ]
        tail = JobHandle(self.source, rows[-1].id, then) if then is not None else None
        return GroupHandle(handles, tail)


def _check_key(new: NewJob) -> None:
    """A workflow step with a unique key must be new: the steps after it wait for it by
    id, so another job holding the key cannot stand in for it.
    """
    if new.unique_key is not None and new.on_conflict != "reject":
        raise InvalidJobOption(
            "on_conflict",
            "a workflow step with a unique key must be new (the steps after it wait for"
            " it by id): give on_conflict='reject' to be told when the key is held",
        )
