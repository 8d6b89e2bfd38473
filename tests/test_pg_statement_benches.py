"""Short runs of `benchmarks/pg_enqueue_call.py`, `benchmarks/pg_statements.py` and
`benchmarks/pg_pickup_steps.py` on a real PostgreSQL: each runs the store's own
statements as the store sends them, prints every measure, and leaves no schema behind.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from tests.conftest import PG_DSN, require_postgres
from tests.support.benchmarks import run_benchmark


async def _schemas(prefix: str) -> int:
    conn = await asyncpg.connect(PG_DSN)
    try:
        query = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1"
        return int(await conn.fetchval(query, prefix.replace("_", "\\_") + "%"))
    finally:
        await conn.close()


@pytest.mark.slow
def test_pg_enqueue_call_times_calls_bulk_calls_and_each_statement() -> None:
    require_postgres()
    before = asyncio.run(_schemas("bj_call_"))
    result = json.loads(
        run_benchmark("pg_enqueue_call.py", "--dsn", PG_DSN, "--calls", "50", timeout=180)
    )
    assert result["call"]["cpu_us_per_call"] > 0
    assert result["bulk"]["size"] == 1000 and result["bulk"]["cpu_us_per_job"] > 0
    statements = result["statement_p50_ms"]
    assert sorted(statements) == ["bare_insert", "full", "no_audit_row", "no_fence"]
    assert all(len(times) == 4 and min(times) > 0 for times in statements.values())
    spaced = result["spaced"]
    assert sorted(spaced) == ["insert", "runtime", "statement"]
    assert all(arm["p50_ms"] > 0 and arm["cpu_us_p50"] > 0 for arm in spaced.values())
    assert asyncio.run(_schemas("bj_call_")) == before


@pytest.mark.slow
def test_pg_statements_times_each_write_of_the_three_statements() -> None:
    require_postgres()
    before = asyncio.run(_schemas("bj_statements_"))
    result = json.loads(
        run_benchmark(
            "pg_statements.py", "--dsn", PG_DSN, "--jobs", "1000", "--batch", "100", timeout=180
        )
    )
    assert all(len(rounds) == 4 for rounds in result["execution_us_per_job"].values())
    writes = result["writes_last_round"]
    assert sorted(writes["enqueue"]) == ["audit_insert", "jobs_insert"]
    assert sorted(writes["claim"]) == ["audit_insert", "jobs_update"]
    # each statement writes every job's row and its audit row: WAL for both
    for statement in writes.values():
        assert all(w["wal_bytes_per_job"] > 50 for w in statement.values()), statement
    assert asyncio.run(_schemas("bj_statements_")) == before


@pytest.mark.slow
def test_pg_pickup_steps_times_each_step_from_enqueue_to_handler() -> None:
    require_postgres()
    before = asyncio.run(_schemas("bj_pickup_"))
    result = json.loads(
        run_benchmark(
            "pg_pickup_steps.py", "--dsn", PG_DSN, "--jobs", "30", "--spacing-ms", "10", timeout=180
        )
    )
    steps = result["steps_us"]
    # Most jobs are claimed by their own notification, each step seen for each of them.
    assert steps["jobs_measured"] >= 15, steps
    durations = {
        k: v for k, v in steps.items() if k not in ("jobs_measured", "notified_before_return")
    }
    assert sorted(durations) == [
        "claim_loop_to_claim_sent",
        "claim_statement",
        "enqueue_call",
        "lanes_to_handler",
        "notification_to_claim_loop",
        "rows_to_lanes",
        "total",
    ]
    assert all(us > 0 for us in durations.values()), steps
    assert steps["total"] > steps["claim_statement"] + steps["lanes_to_handler"], steps
    for step in ("prepare", "anyio_event", "asyncio_event"):
        assert result["cold_us"][step]["apart"] > 0 and result["cold_us"][step]["back_to_back"] > 0
    assert asyncio.run(_schemas("bj_pickup_")) == before
