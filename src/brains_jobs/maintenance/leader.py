"""Leader election: one process per database runs the leader-only services.

The store decides who leads (PostgreSQL: an advisory lock held on a connection of the
leader's own, which dies with it; SQLite: a lease row). A leader renews every third of
its lease; one that cannot renew steps down at once, and another takes over within one
lease of the leader's death.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from .._signal import Signal

if TYPE_CHECKING:
    from ..store.roles import Maintenance

logger = logging.getLogger("brains_jobs.maintenance")


class Leadership:
    """Campaigns for leadership and keeps it; `is_leader` says how it goes."""

    def __init__(self, store: Maintenance, holder: str, lease: float) -> None:
        self.store = store
        self.holder = holder
        self.lease = lease
        self.is_leader = False
        #: Notified whenever `is_leader` changes.
        self.changed = Signal()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Campaign every `lease / 3` seconds until cancelled."""
        await self.campaign()
        task_status.started()
        while True:
            await anyio.sleep(self.lease / 3)
            await self.campaign()

    async def campaign(self) -> bool:
        """One round: become or stay leader if possible; True while leading."""
        try:
            leading = await self.store.lead(self.holder, self.lease)
        except Exception as exc:
            logger.warning("maintenance: leader election failed: %s", exc)
            leading = False
        if leading != self.is_leader:
            self.is_leader = leading
            logger.info(
                "maintenance: %s %s the leader",
                self.holder,
                "is now" if leading else "is no longer",
            )
            self.changed.notify()
        return leading

    async def resign(self) -> None:
        """Step down (at exit), so that another process takes over at once."""
        if not self.is_leader:
            return
        self.is_leader = False
        self.changed.notify()
        try:
            await self.store.resign(self.holder)
        except Exception as exc:
            logger.warning("maintenance: resigning failed: %s", exc)
