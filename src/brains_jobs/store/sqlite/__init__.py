"""The SQLite store: one file, WAL, one short `BEGIN IMMEDIATE` transaction per batch.

Its roles live in modules of their own (`queue`, `admin`, `maintenance`) over the
connection handling of `connection`; `SQLiteStore` puts them together.
"""

from __future__ import annotations

from .admin import SQLiteAdmin
from .maintenance import SQLiteMaintenance
from .queue import SQLiteQueue


class SQLiteStore(SQLiteQueue, SQLiteAdmin, SQLiteMaintenance):
    """Jobs in one SQLite file (or `:memory:` for a single process)."""


__all__ = ["SQLiteStore"]
