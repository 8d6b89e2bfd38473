"""The SQLite store: one file, WAL, one short `BEGIN IMMEDIATE` transaction per batch.

Its roles live in modules of their own (`queue` with `limits` and `dependencies`,
`admin`, `maintenance`, `schedules`, `templates`, `snapshots`) over the connection
handling of `connection`, with the statements in `sql`; `SQLiteStore` puts them together.
"""

from __future__ import annotations

from .admin import SQLiteAdmin
from .maintenance import SQLiteMaintenance
from .queue import SQLiteQueue
from .schedules import SQLiteSchedules
from .snapshots import SQLiteSnapshots
from .templates import SQLiteTemplates


class SQLiteStore(
    SQLiteQueue,
    SQLiteAdmin,
    SQLiteMaintenance,
    SQLiteSchedules,
    SQLiteTemplates,
    SQLiteSnapshots,
):
    """Jobs in one SQLite file (or `:memory:` for a single process)."""


__all__ = ["SQLiteStore"]
