"""The PostgreSQL store: many workers on many machines share one database.

Every time comes from the database clock (`now()`), so workers whose clocks disagree
still agree on run times and leases. Event sequence numbers are read up to a horizon
that no transaction still in flight can fall below (see the first migration), so a
reader never skips an event that commits late.

Its roles live in modules of their own over `connection` (pool, statements, schema) and
`wakeups` (LISTEN/NOTIFY): `queue`, `admin`, `maintenance`; `PostgresStore` is the last
of them.
"""

from __future__ import annotations

from .connection import DEFAULT_SCHEMA, parse_url
from .maintenance import PostgresMaintenance


class PostgresStore(PostgresMaintenance):
    """Jobs in PostgreSQL, in their own schema (`?schema=NAME`, default `brains_jobs`)."""


__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "parse_url"]
