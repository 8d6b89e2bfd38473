-- Running jobs are indexed by the end of their lease, the rescuer's question (which
-- leases expired, oldest first), instead of by id. The index by id let PostgreSQL,
-- trusting statistics taken while few jobs ran, join each result batch with every
-- running job of every worker (a hash of them all per batch); a batch now finds its
-- rows by primary key. The extra `lease_until IS NOT NULL` keeps the index out of
-- those joins, which do not name the lease.
DROP INDEX IF EXISTS {{schema}}.jobs_running;
CREATE INDEX jobs_leases ON {{schema}}.jobs (lease_until)
    WHERE status = 'running' AND lease_until IS NOT NULL;
