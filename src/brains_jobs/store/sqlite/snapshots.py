"""The SQLite store's snapshots role: queue depths, and the snapshots the leader keeps."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text

from ..snapshots import QueueDepth, Snapshot
from .connection import SQLiteBase

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

DEPTHS = text("""
SELECT queue, status, count(*),
       max(CASE WHEN status = 'queued' AND run_at <= :now THEN :now - run_at END)
  FROM jobs
 WHERE status IN ('waiting', 'queued', 'running')
 GROUP BY queue, status
 ORDER BY queue, status
""")

SAVE = text("""
INSERT INTO metrics_snapshot (name, taken_at, data) VALUES (:name, :now, :data)
ON CONFLICT (name) DO UPDATE SET taken_at = excluded.taken_at, data = excluded.data
""")

ONE = text("SELECT taken_at, data FROM metrics_snapshot WHERE name = :name")


class SQLiteSnapshots(SQLiteBase):
    """Snapshots on SQLite."""

    async def queue_depths(self) -> list[QueueDepth]:
        params = {"now": time.time()}

        async def read(conn: AsyncConnection) -> list[QueueDepth]:
            rows = await conn.execute(DEPTHS, params)
            return [QueueDepth(r[0], r[1], int(r[2]), r[3]) for r in rows]

        return await self._read(read)

    async def save_snapshot(self, name: str, data: str) -> None:
        params = {"name": name, "data": data, "now": time.time()}

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(SAVE, params)

        await self._write(write)

    async def snapshot(self, name: str) -> Snapshot | None:
        async def read(conn: AsyncConnection) -> Snapshot | None:
            row = (await conn.execute(ONE, {"name": name})).first()
            if row is None:
                return None
            return Snapshot(datetime.fromtimestamp(row[0], UTC), row[1])

        return await self._read(read)
