"""Where PostgreSQL's time goes in a drain's two statements, printed as one JSON object.

    python benchmarks/pg_statements.py [--dsn DSN] [--jobs 20000] [--batch 500]

N no-op jobs are enqueued in a schema of their own, vacuumed and analysed. Then, four times,
a batch is enqueued in bulk (the plain statement), and a batch is claimed and its results
written as the worker does, each statement run as a prepared statement with a generic
plan (as the store's connections run them) under `EXPLAIN (ANALYZE, BUFFERS, WAL)`.
Printed per statement: the execution time per job of each round, and for the last round
the time and WAL per job of its two writes (the jobs' insert or update, the audit rows'
insert). The schema is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

from measures import generic_plan_session

from brains_jobs.store import NewJob
from brains_jobs.store.postgres import PostgresStore

WRITES = {"jobs": "jobs", "job_events": "audit"}


def writes(node: dict[str, Any], found: dict[str, dict[str, float]], batch: int) -> None:
    """The ModifyTable nodes of a plan: time (inclusive) and WAL per job, by table and
    operation (`jobs_insert`, `jobs_update`, `audit_insert`).
    """
    if node.get("Node Type") == "ModifyTable" and node.get("Relation Name") in WRITES:
        name = f"{WRITES[node['Relation Name']]}_{node['Operation'].lower()}"
        found[name] = {
            "us_per_job": round(node["Actual Total Time"] * 1000 / batch, 2),
            "wal_bytes_per_job": round(node.get("WAL Bytes", 0) / batch, 1),
        }
    for child in node.get("Plans", []):
        writes(child, found, batch)


def array(values: list[Any]) -> str:
    """A PostgreSQL array literal of `values` (numbers, or strings without quotes)."""
    return "'{" + ",".join(str(v) for v in values) + "}'"


async def main(dsn: str, n: int, batch: int) -> dict[str, Any]:
    schema = f"bj_statements_{uuid.uuid4().hex[:8]}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={schema}"
    store = PostgresStore(url)
    await store.open()
    conn = await generic_plan_session(dsn, schema)
    try:
        for start in range(0, n, 5000):
            await store.enqueue(
                [
                    NewJob("noop", "default", 0, f'{{"i": {i}}}', 3)
                    for i in range(start, start + 5000)
                ]
            )
        # vacuumed too: autovacuum would otherwise start on the new rows during the rounds
        await conn.execute(f'VACUUM (ANALYZE) "{schema}".jobs, "{schema}".job_events')
        await conn.execute(
            f"PREPARE claim(text, float8, text, text[], text[], int) AS {store._sql_claim}"
        )
        await conn.execute(f"PREPARE finish(bigint[], text, text) AS {store._sql_finish_succeeded}")
        plain = store._sql_enqueue_plain[False, False]
        await conn.execute(f"PREPARE enqueue(text, text, int, text, int, text) AS {plain}")
        rounds: dict[str, list[float]] = {"enqueue": [], "claim": [], "finish": []}
        last: dict[str, dict[str, dict[str, float]]] = {}
        explain = "EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) EXECUTE"
        for _ in range(4):
            token = uuid.uuid4().hex
            async with conn.transaction():
                # the inputs joined by U+001F, as the store sends them
                inputs = f"""array_fill('{{"i": 1}}'::text, ARRAY[{batch}])"""
                inputs = f"array_to_string({inputs}, chr(31))"
                enqueue = json.loads(
                    await conn.fetchval(f"{explain} enqueue('noop', 'default', 0, {inputs}, 3, '')")
                )[0]
                claim = json.loads(
                    await conn.fetchval(
                        f"{explain} claim('{token}', 30.0, 'w', ARRAY['noop'], NULL, {batch})"
                    )
                )[0]
                ids = [
                    r[0]
                    for r in await conn.fetch("SELECT id FROM jobs WHERE lease_token = $1", token)
                ]
                # each output the JSON text {}; the texts joined as the store joins them
                empty_outputs = array(['"{}"'] * len(ids))
                outputs = f"array_to_string({empty_outputs}::text[], chr(31))"
                tokens = f"array_to_string({array([token] * len(ids))}::text[], chr(31))"
                finish = json.loads(
                    await conn.fetchval(f"{explain} finish({array(ids)}, {tokens}, {outputs})")
                )[0]
            for name, plan in (("enqueue", enqueue), ("claim", claim), ("finish", finish)):
                rounds[name].append(round(plan["Execution Time"] * 1000 / batch, 2))
                found: dict[str, dict[str, float]] = {}
                writes(plan["Plan"], found, batch)
                last[name] = found
        return {
            "store": "postgresql",
            "jobs": n,
            "batch": batch,
            "execution_us_per_job": rounds,
            "writes_last_round": last,
        }
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.dsn, options.jobs, options.batch))))
