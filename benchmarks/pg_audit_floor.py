"""What each duty of a job queue costs PostgreSQL per job, from the bare floor queue up
to this store, printed as one JSON object.

    python benchmarks/pg_audit_floor.py [--dsn DSN] [--jobs 50000] [--batch 500] [--rounds 3]

Each step is the one before with one more duty, on the shared harness's floor queue
(`peer_floor.py`: seven columns, fillfactor 50, one partial index for the claim):

- `floor`: the floor's claim and completion statements;
- `audit`: every transition also writes an audit row (the store's `job_events` table,
  its two indexes and the event fence);
- `lease_index`: a partial index on running jobs, so that expired leases are found
  without reading every job kept;
- `prune_index`: a finish time and the pruner's index on finished jobs;
- `store_table`: this store's schema (its 44 columns and all its indexes), drained by
  the floor's statements, without audit rows;
- `store`: this store's own schema and claim and finish statements.

The last two plan their statements generically, as the store's connections do; the
floor's steps plan theirs as the floor does.

For each, N jobs are queued in a schema of their own (bulk, analysed, vacuumed), then
drained by one connection: a claim of `--batch` jobs, then one statement completing
them, each in its own transaction, as the store's worker sends them. Measured over the
drain only, as the shared harness measures it: PostgreSQL's CPU per job (its processes'
CPU time from `/proc`, in clock ticks: run this on the database's machine, with enough
jobs that a tick is small beside the drain), WAL bytes per job, and jobs/s. The steps
alternate for `--rounds` rounds; printed are each round's figures and each step's
median, and the ratio of its CPU to the floor's of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import asyncpg
from measures import generic_plan_session
from pg_cpu import postgres_cpu

from brains_jobs.store import NewJob
from brains_jobs.store.postgres import PostgresStore
from brains_jobs.store.postgres.args import joined

FLOOR_DDL = """
CREATE TABLE jobs (
    id          bigserial PRIMARY KEY,
    status      smallint    NOT NULL DEFAULT 0,
    payload     jsonb       NOT NULL,
    priority    smallint    NOT NULL DEFAULT 0,
    run_at      timestamptz NOT NULL DEFAULT now(),
    attempts    smallint    NOT NULL DEFAULT 0,
    lease_until timestamptz{finished}
) WITH (fillfactor = 50);
CREATE INDEX jobs_queued ON jobs (priority DESC, run_at, id) WHERE status = 0;
"""
FINISHED = ",\n    finished_at timestamptz"

# The store's own audit table (its columns, defaults, sequence and two indexes), copied
# from a store opened for the run; its event fence is called where the store's is.
AUDIT_DDL = (
    'CREATE TABLE job_events (LIKE "{store}".job_events INCLUDING DEFAULTS INCLUDING INDEXES);'
)
LEASE_DDL = "CREATE INDEX jobs_running ON jobs (id) WHERE status = 1;"
PRUNE_DDL = (
    "CREATE INDEX jobs_finished ON jobs (status, finished_at) WHERE finished_at IS NOT NULL;"
)

# The floor's statements, for its own table (statuses 0 queued, 1 running, 2 done) and
# for the store's (statuses by name, the ready jobs as its claim index has them).
ENQUEUE = "INSERT INTO jobs (payload) SELECT unnest($1::jsonb[])"
CLAIM = """
UPDATE jobs
   SET status = {running}, attempts = attempts + 1,
       lease_until = now() + make_interval(secs => 30)
 WHERE id = ANY(ARRAY(SELECT id FROM jobs
                       WHERE {ready} AND run_at <= now()
                       ORDER BY priority DESC, run_at, id
                       LIMIT $1
                       FOR UPDATE SKIP LOCKED))
"""
COMPLETE = """
UPDATE jobs SET status = {done}, lease_until = NULL{finish}
 WHERE id = ANY($1::bigint[]) AND status = {running}
"""
FLOOR_STATUSES = {"running": "1", "ready": "status = 0", "done": "2"}
STORE_STATUSES = {
    "running": "'running'",
    "ready": "status = 'queued' AND crashes = 0 AND NOT limited",
    "done": "'succeeded'",
}


def audited(statement: str, status: str, returned: str, store: str) -> str:
    """`statement` (an insert or update of jobs) with an audit row for each job it wrote,
    behind the store's event fence, as the store's own statements write them.
    """
    return f"""
WITH changed AS ({statement} RETURNING id, attempts, payload), ev AS (
    INSERT INTO job_events (job_id, job_type, kind, status, attempt, actor)
    SELECT id, 'noop', 'status', '{status}', attempts, 'w' FROM changed
     WHERE (SELECT "{store}".events_fence())
)
SELECT {returned} FROM changed
"""


async def drain_plainly(
    conn: asyncpg.Connection, claim_sql: str, complete_sql: str, batch: int
) -> int:
    """Claim `batch` jobs, complete them, until none is left: the jobs drained."""
    claim = await conn.prepare(claim_sql)
    complete = await conn.prepare(complete_sql)
    done = 0
    while rows := await claim.fetch(batch):
        await complete.fetch([r[0] for r in rows])
        done += len(rows)
    return done


class Floor:
    """One step of the ladder on the floor's table: its DDL and its three statements."""

    def __init__(self, name: str, *, audit: bool, lease: bool, prune: bool) -> None:
        self.name = name
        self.audit, self.lease, self.prune = audit, lease, prune

    async def setup(self, dsn: str, schema: str, n: int, store: str) -> asyncpg.Connection:
        ddl = FLOOR_DDL.format(finished=FINISHED if self.prune else "")
        ddl += AUDIT_DDL.format(store=store) if self.audit else ""
        ddl += (LEASE_DDL if self.lease else "") + (PRUNE_DDL if self.prune else "")
        claim = CLAIM.format(**FLOOR_STATUSES)
        complete = COMPLETE.format(
            **FLOOR_STATUSES, finish=", finished_at = now()" if self.prune else ""
        )
        self.enqueue_sql, self.claim_sql, self.complete_sql = (
            ENQUEUE,
            claim + "RETURNING id, payload",
            complete,
        )
        if self.audit:
            self.enqueue_sql = audited(ENQUEUE, "queued", "id", store)
            self.claim_sql = audited(claim, "running", "id, payload", store)
            self.complete_sql = audited(complete, "succeeded", "id", store)
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path = "{schema}"')
        await conn.execute(ddl)
        for start in range(0, n, 5000):
            payloads = [json.dumps({"i": i}) for i in range(start, min(n, start + 5000))]
            await conn.execute(self.enqueue_sql, payloads)
        await conn.execute("VACUUM (ANALYZE) jobs" + (", job_events" if self.audit else ""))
        return conn

    async def drain(self, conn: asyncpg.Connection, batch: int) -> int:
        return await drain_plainly(conn, self.claim_sql, self.complete_sql, batch)


class Store:
    """The last step: this store's schema, and its own claim and finish statements."""

    name = "store"

    async def setup(self, dsn: str, schema: str, n: int, store: str) -> asyncpg.Connection:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={schema}"
        opened = PostgresStore(url)
        await opened.open()
        try:
            for start in range(0, n, 5000):
                await opened.enqueue(
                    [
                        NewJob("noop", "default", 0, f'{{"i": {i}}}', 3)
                        for i in range(start, min(n, start + 5000))
                    ]
                )
            self.claim_sql, self.finish_sql = opened._sql_claim, opened._sql_finish_succeeded
        finally:
            await opened.close()
        conn = await generic_plan_session(dsn, schema)  # as the store's own connections
        await conn.execute("VACUUM (ANALYZE) jobs, job_events")
        return conn

    async def drain(self, conn: asyncpg.Connection, batch: int) -> int:
        claim = await conn.prepare(self.claim_sql)
        finish = await conn.prepare(self.finish_sql)
        done = 0
        while True:
            token = uuid.uuid4().hex
            rows = await claim.fetch(token, 30.0, "w", ["noop"], None, batch)
            if not rows:
                return done
            ids = [r[0] for r in rows]
            await finish.fetch(ids, joined([token] * len(ids)), joined(["{}"] * len(ids)))
            done += len(rows)


class StoreTable(Store):
    """This store's schema, drained by the floor's statements (no audit rows)."""

    name = "store_table"

    async def drain(self, conn: asyncpg.Connection, batch: int) -> int:
        claim = CLAIM.format(**STORE_STATUSES) + "RETURNING id, input"
        complete = COMPLETE.format(**STORE_STATUSES, finish=", finished_at = now()")
        return await drain_plainly(conn, claim, complete, batch)


STEPS: list[Floor | Store] = [
    Floor("floor", audit=False, lease=False, prune=False),
    Floor("audit", audit=True, lease=False, prune=False),
    Floor("lease_index", audit=True, lease=True, prune=False),
    Floor("prune_index", audit=True, lease=True, prune=True),
    StoreTable(),
    Store(),
]


async def measure(
    step: Floor | Store, dsn: str, n: int, batch: int, store: str
) -> dict[str, float]:
    schema = f"bj_ladder_{uuid.uuid4().hex[:8]}"
    conn = await step.setup(dsn, schema, n, store)
    try:
        wal_start = await conn.fetchval("SELECT pg_current_wal_lsn()")
        pg_start, t0 = postgres_cpu(), time.perf_counter()
        done = await step.drain(conn, batch)
        elapsed, pg_end = time.perf_counter() - t0, postgres_cpu()
        wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", wal_start)
        assert done == n, f"{step.name}: drained {done} of {n}"
        assert pg_start is not None and pg_end is not None
        return {
            "drain_jobs_per_s": round(n / elapsed, 1),
            "postgres_us_per_job": round((pg_end - pg_start) / n * 1e6, 1),
            "wal_bytes_per_job": round(float(wal) / n, 1),
        }
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def main(dsn: str, n: int, batch: int, rounds: int, names: list[str]) -> dict[str, Any]:
    if postgres_cpu() is None:
        raise SystemExit("no PostgreSQL process here: run this on the database's machine")
    steps = [step for step in STEPS if step.name in names or step.name == "floor"]
    runs: dict[str, list[dict[str, float]]] = {step.name: [] for step in steps}
    ratios: dict[str, list[float]] = {step.name: [] for step in steps}
    # A store of the run's own, whose audit table and fence the floor's steps borrow.
    store = f"bj_ladder_store_{uuid.uuid4().hex[:8]}"
    template = PostgresStore(
        dsn.replace("postgresql://", "postgresql+asyncpg://", 1) + f"?schema={store}"
    )
    await template.open()
    await template.close()
    try:
        for _ in range(rounds):
            for step in steps:
                runs[step.name].append(await measure(step, dsn, n, batch, store))
            floor_cpu = runs["floor"][-1]["postgres_us_per_job"]
            for step in steps:
                cpu = runs[step.name][-1]["postgres_us_per_job"]
                if floor_cpu:  # a short run may fall under the clock's tick
                    ratios[step.name].append(round(cpu / floor_cpu, 2))
    finally:
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{store}" CASCADE')
        await conn.close()
    return {
        "jobs": n,
        "batch": batch,
        "rounds": runs,
        "median": {
            name: {key: round(statistics.median(r[key] for r in results), 1) for key in results[0]}
            | {"postgres_cpu_vs_floor": statistics.median(ratios[name]) if ratios[name] else None}
            for name, results in runs.items()
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--steps", default=",".join(step.name for step in STEPS), help="the floor always runs"
    )
    options = parser.parse_args()
    names = options.steps.split(",")
    result = main(options.dsn, options.jobs, options.batch, options.rounds, names)
    print(json.dumps(asyncio.run(result)))
