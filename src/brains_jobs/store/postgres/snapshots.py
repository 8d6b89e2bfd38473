"""The PostgreSQL store's snapshots role: queue depths, and the snapshots the leader
keeps (times from the database clock).
"""

from __future__ import annotations

from ..snapshots import QueueDepth, Snapshot
from .connection import PostgresBase

DEPTHS = """
SELECT queue, status, count(*),
       max(extract(epoch FROM now() - run_at)::float8)
           FILTER (WHERE status = 'queued' AND run_at <= now())
  FROM {{schema}}.jobs
 WHERE status IN ('waiting', 'queued', 'running')
 GROUP BY queue, status
 ORDER BY queue, status
"""

SAVE = """
INSERT INTO {{schema}}.metrics_snapshot (name, taken_at, data) VALUES ($1, now(), $2::jsonb)
ON CONFLICT (name) DO UPDATE SET taken_at = excluded.taken_at, data = excluded.data
"""

ONE = "SELECT taken_at, data::text FROM {{schema}}.metrics_snapshot WHERE name = $1"


class PostgresSnapshots(PostgresBase):
    """Snapshots on PostgreSQL."""

    async def queue_depths(self) -> list[QueueDepth]:
        rows = await self.read(self.sql(DEPTHS))
        return [QueueDepth(r[0], r[1], int(r[2]), r[3]) for r in rows]

    async def save_snapshot(self, name: str, data: str) -> None:
        await self.fetch("snapshot", self.sql(SAVE), name, data, idempotent=True)

    async def snapshot(self, name: str) -> Snapshot | None:
        rows = await self.read(self.sql(ONE), name)
        return Snapshot(rows[0][0], rows[0][1]) if rows else None
