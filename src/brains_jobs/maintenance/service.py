"""Maintenance services: the protocol they follow, and the group that runs them.

A service does one kind of upkeep in passes (`run_once`), every `interval` seconds.
Services marked `leader_only` run in one process per database at a time, the leader
(see `leader`); the others run in every process that runs the group, so that, for
example, every worker rescues the expired leases it finds without waiting for a leader.
A pass that raises is logged and tried again at the next interval; it never stops the
group. Third parties add services through the `brains_jobs_register_services` hook.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskStatus

from .leader import Leadership

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..artifacts import ArtifactStore
    from ..config import Settings
    from ..registry import Registry
    from ..store.roles import Store

logger = logging.getLogger("brains_jobs.maintenance")


@dataclass(frozen=True, slots=True)
class MaintenanceContext:
    """What a service may use: the store, the job types, the artifacts, the settings,
    and this process's name as a maintenance participant.
    """

    store: Store
    registry: Registry
    artifacts: ArtifactStore
    settings: Settings
    holder: str


@runtime_checkable
class Service(Protocol):
    """One kind of upkeep, done in passes."""

    #: A short name for logs (`rescuer`, `pruner`...).
    name: str
    #: Run only in the leader process of the database.
    leader_only: bool

    def interval(self, settings: Settings) -> float:
        """Seconds between passes."""
        ...

    async def run_once(self, ctx: MaintenanceContext) -> int:
        """One pass; returns how many things it handled (for logs and tests)."""
        ...


def default_holder() -> str:
    """This process's name as a maintenance participant: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class MaintenanceGroup:
    """Runs services, and the leader election the leader-only ones need."""

    def __init__(self, ctx: MaintenanceContext, services: Sequence[Service]) -> None:
        self.ctx = ctx
        self.services = list(services)
        self.leadership = Leadership(ctx.store, ctx.holder, ctx.settings.leader_lease)
        #: Passes run, by service name (for tests and logs).
        self.passes: dict[str, int] = {s.name: 0 for s in self.services}

    @property
    def is_leader(self) -> bool:
        """True while this process leads its database."""
        return self.leadership.is_leader

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every service until cancelled. The services that every process runs do
        one pass before this reports started (a burst worker rescues before it looks).
        """
        for service in self.services:
            if not service.leader_only:
                await self.run_pass(service)
        try:
            async with anyio.create_task_group() as tg:
                if any(s.leader_only for s in self.services):
                    await tg.start(self.leadership.run)
                for service in self.services:
                    tg.start_soon(self._loop, service, name=f"maintenance {service.name}")
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                await self.leadership.resign()

    async def _loop(self, service: Service) -> None:
        interval = service.interval(self.ctx.settings)
        first = not service.leader_only  # those did a pass already
        while True:
            if service.leader_only and not self.leadership.is_leader:
                await self.leadership.changed.wait(interval)
                continue
            if first:
                first = False
            else:
                await self.run_pass(service)
            await anyio.sleep(interval)

    async def run_pass(self, service: Service) -> int:
        """One pass of `service`, its errors logged."""
        try:
            handled = await service.run_once(self.ctx)
        except Exception:
            logger.exception("maintenance: %s failed; trying again later", service.name)
            return 0
        self.passes[service.name] = self.passes.get(service.name, 0) + 1
        return handled
