"""The schema as SQLAlchemy Core tables, for the queries that filter and page.

DDL lives in the versioned migrations beside this module; `tests/unit/test_schema.py`
checks that both agree. Timestamps are `timestamptz` on PostgreSQL and epoch seconds
(REAL) on SQLite, where numbers compare and index faster than text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


class Timestamp(TypeDecorator[datetime]):
    """A UTC datetime: `timestamptz` on PostgreSQL, epoch seconds on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Float())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return value.timestamp()

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return datetime.fromtimestamp(value, UTC)
        assert isinstance(value, datetime)
        return value


metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String, nullable=False),
    Column("queue", String, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("errors", Text, nullable=False),
    Column("progress", Float),
    Column("progress_message", Text),
    Column("last_message", Text),
    Column("unique_key", String),
    Column("tags", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("owner", String),
    Column("parent_id", Integer),
    Column("worker_id", String),
    Column("lease_token", String),
    Column("lease_until", Timestamp),
    Column("cancel_requested", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("run_at", Timestamp, nullable=False),
    Column("started_at", Timestamp),
    Column("finished_at", Timestamp),
    Column("updated_at", Timestamp, nullable=False),
    Column("started", Boolean, nullable=False),
    Column("mark_start", Boolean, nullable=False),
    Column("crashes", Integer, nullable=False),
    Column("last_actor", Text),
    Column("unique_keep", Boolean, nullable=False),
    Column("pending_parents", Integer, nullable=False),
    Column("has_children", Boolean, nullable=False),
    Column("input_from", Text),
    Column("limit_keys", Text),
    Column("limited", Boolean, nullable=False),
    Column("original_id", Integer),
    Column("usage", Text),
    Column("version", Integer, nullable=False),
    Column("tracked", Boolean, nullable=False),
    Column("track_ttl", Float),
    Column("callback_pending", Boolean, nullable=False),
    Column("trace", Text),
)

job_dependencies = Table(
    "job_dependencies",
    metadata,
    Column("parent_id", Integer, primary_key=True),
    Column("child_id", Integer, primary_key=True),
    Column("on_failure", Text, nullable=False),
)

job_events = Table(
    "job_events",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("job_id", Integer, nullable=False),
    Column("job_type", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("status", String),
    Column("attempt", Integer, nullable=False),
    Column("progress", Float),
    Column("message", Text),
    Column("data", Text),
    Column("at", Timestamp, nullable=False),
    Column("actor", Text),
)

brains_jobs_meta = Table(
    "brains_jobs_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", Text, nullable=False),
    Column("types", Text, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("version", Text),
    Column("started_at", Timestamp, nullable=False),
    Column("heartbeat_at", Timestamp, nullable=False),
    Column("running", Integer, nullable=False),
)

leaders = Table(
    "leaders",
    metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("since", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)


limit_keys = Table(
    "limit_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("concurrency", Integer),
    Column("rate", Integer),
    Column("per", Float),
    Column("burst", Integer, nullable=False),
    Column("tat", Float, nullable=False),
    Column("blocked_until", Float, nullable=False),
)


templates = Table(
    "templates",
    metadata,
    Column("name", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("name", Text, primary_key=True),
    Column("job_type", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("expr", Text),
    Column("timezone", Text, nullable=False),
    Column("interval_seconds", Integer),
    Column("anchor", Timestamp),
    Column("missed", Text, nullable=False),
    Column("grace", Float, nullable=False),
    Column("queue", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("input", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("owner", Text),
    Column("source", Text, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("next_run_at", Timestamp),
    Column("last_run_at", Timestamp),
    Column("last_job_id", Integer),
    Column("version", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    Column("schedule", Text, primary_key=True),
    Column("tick", Timestamp, primary_key=True),
    Column("outcome", Text, nullable=False),
    Column("job_id", Integer),
    Column("detail", Text),
    Column("recorded_at", Timestamp, nullable=False),
)

metrics_snapshot = Table(
    "metrics_snapshot",
    metadata,
    Column("name", Text, primary_key=True),
    Column("taken_at", Timestamp, nullable=False),
    Column("data", Text, nullable=False),
)
