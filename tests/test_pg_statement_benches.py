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


def _run(script: str, prefix: str, *args: str) -> dict:
    """What `script` prints (one JSON object), checking that it left no schema named
    `prefix...` behind.
    """
    require_postgres()
    before = asyncio.run(_schemas(prefix))
    result = json.loads(run_benchmark(script, "--dsn", PG_DSN, *args, timeout=180))
    assert asyncio.run(_schemas(prefix)) == before, f"{script} left a schema behind"
    return result


@pytest.mark.slow
def test_pg_enqueue_call_times_calls_bulk_calls_and_each_statement() -> None:
    result = _run("pg_enqueue_call.py", "bj_call_", "--calls", "50")
    assert result["call"]["cpu_us_per_call"] > 0
    assert result["bulk"]["size"] == 1000 and result["bulk"]["cpu_us_per_job"] > 0
    statements = result["statement_p50_ms"]
    assert sorted(statements) == ["bare_insert", "full", "no_audit_row", "no_fence"]
    assert all(len(times) == 4 and min(times) > 0 for times in statements.values())
    spaced = result["spaced"]
    assert sorted(spaced) == ["insert", "runtime", "statement"]
    assert all(arm["p50_ms"] > 0 and arm["cpu_us_p50"] > 0 for arm in spaced.values())


@pytest.mark.slow
def test_pg_statements_times_each_write_of_the_three_statements() -> None:
    result = _run("pg_statements.py", "bj_statements_", "--jobs", "1000", "--batch", "100")
    assert all(len(rounds) == 4 for rounds in result["execution_us_per_job"].values())
    writes = result["writes_last_round"]
    assert sorted(writes["enqueue"]) == ["audit_insert", "jobs_insert"]
    assert sorted(writes["claim"]) == ["audit_insert", "jobs_update"]
    # each statement writes every job's row and its audit row: WAL for both
    for statement in writes.values():
        assert all(w["wal_bytes_per_job"] > 50 for w in statement.values()), statement


@pytest.mark.slow
def test_pg_pickup_steps_times_each_step_from_enqueue_to_handler() -> None:
    result = _run("pg_pickup_steps.py", "bj_pickup_", "--jobs", "30", "--spacing-ms", "10")
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
