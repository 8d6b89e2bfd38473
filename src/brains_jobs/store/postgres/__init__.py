"""The PostgreSQL store: many workers on many machines share one database.

Every time comes from the database clock (`now()`), so workers whose clocks disagree
still agree on run times and leases. Event sequence numbers are read up to a horizon
that no transaction still in flight can fall below (see the first migration), so a
reader never skips an event that commits late.

Its roles live in modules of their own over `connection` (pool, statements, schema) and
`wakeups` (LISTEN/NOTIFY): `limits`, `queue` (with `dependencies`), `admin`,
`maintenance`, `schedules`, `templates`, `snapshots`; the statements are in `sql`,
`sql_enqueue` and `sql_changes`, the batches laid out as arrays in `args`. `PostgresStore`
puts them together.
"""

from __future__ import annotations

from .connection import DEFAULT_SCHEMA, parse_url
from .maintenance import PostgresMaintenance
from .schedules import PostgresSchedules
from .snapshots import PostgresSnapshots
from .templates import PostgresTemplates


class PostgresStore(PostgresMaintenance, PostgresSchedules, PostgresTemplates, PostgresSnapshots):
    """Jobs in PostgreSQL, in their own schema (`?schema=NAME`, default `brains_jobs`)."""


__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "parse_url"]
