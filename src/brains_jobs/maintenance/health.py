"""What an operator asks of a database: which workers are alive, and is it healthy."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..models import Health, WorkerInfo
from .reaper import silence_limit

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.roles import Store


async def live_workers(store: Store, settings: Settings) -> list[WorkerInfo]:
    """The workers whose heartbeat is recent (dead ones are left out until reaped)."""
    limit = silence_limit(settings)
    now = time.time()
    return [w for w in await store.workers() if now - w.heartbeat_at.timestamp() <= limit]


async def check_health(store: Store, settings: Settings) -> Health:
    """Whether the database answers and its schema is current, with the live workers,
    the leader and the oldest queued job.
    """
    try:
        pending = await store.pending_migrations()
    except Exception as exc:
        return Health(
            ok=False, problems=[f"database unreachable: {exc}"], database=store.describe()
        )
    if pending:
        return Health(
            ok=False,
            problems=[f"schema not current: migrations {', '.join(pending)} are pending"],
            database=store.describe(),
        )
    return Health(
        ok=True,
        database=store.describe(),
        schema_current=True,
        workers=await live_workers(store, settings),
        leader=await store.leader(),
        oldest_queued_at=await store.oldest_queued(),
    )
