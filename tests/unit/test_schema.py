"""The Core tables used for queries agree with the migrations that create the schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from brains_jobs.store import migrations
from brains_jobs.store.sqlite.connection import split_statements as _statements
from brains_jobs.store.tables import metadata


def test_sqlite_migrations_match_tables(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "schema.db")
    for step in migrations.load("sqlite"):
        for statement in _statements(step.sql):
            db.execute(statement)
    for table in metadata.sorted_tables:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table.name})")]
        assert columns == [c.name for c in table.columns], table.name


def test_migrations_are_ordered_and_named() -> None:
    for dialect in ("sqlite",):
        names = [m.name for m in migrations.load(dialect)]
        assert names == sorted(names) and names[0] == "0001_initial"
