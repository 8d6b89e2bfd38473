"""The PostgreSQL store's access to dependencies inside a transaction (see
`brains_jobs.store.dependencies` for the rules it applies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..dependencies import Edge

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]

    from .connection import PostgresBase

EDGES = """
SELECT parent_id, child_id, on_failure FROM {{schema}}.job_dependencies
 WHERE parent_id = ANY($1::bigint[])
"""

WAITING = """
SELECT id, pending_parents FROM {{schema}}.jobs
 WHERE id = ANY($1::bigint[]) AND status = 'waiting'
"""

ADD_EDGES = """
INSERT INTO {{schema}}.job_dependencies (parent_id, child_id, on_failure)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])
ON CONFLICT DO NOTHING
"""

# Locked: a parent finishing at the same time waits for this transaction, and then
# finds the new edges; or this one waits for it, and finds the parent final.
PARENTS = """
UPDATE {{schema}}.jobs SET has_children = true
 WHERE id = ANY($1::bigint[])
RETURNING id, status
"""

DECREMENT = """
UPDATE {{schema}}.jobs AS j SET pending_parents = j.pending_parents - d.n
  FROM unnest($1::bigint[], $2::int[]) AS d(id, n)
 WHERE j.id = d.id
"""

SKIP = """
WITH upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = 'skipped', finished_at = now(), updated_at = now(),
           last_message = s.message, last_actor = 'dependencies'
      FROM unnest($1::bigint[], $2::text[]) AS s(id, message)
     WHERE j.id = s.id AND j.status = 'waiting'
    RETURNING j.id, j.type, j.attempts, j.last_message
)
INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, actor, at)
SELECT id, type, 'status', 'skipped', attempts, last_message, 'dependencies', now() FROM upd
 WHERE (SELECT {{schema}}.events_fence()) ORDER BY id
"""

# A step of a workflow takes its input from its parents' outputs, in parent id order.
QUEUE = """
WITH upd AS (
    UPDATE {{schema}}.jobs AS j
       SET status = 'queued', run_at = greatest(j.run_at, now()), updated_at = now(),
           last_message = 'the jobs it waited for are done', last_actor = 'dependencies',
           input = CASE j.input_from
               WHEN 'parent' THEN coalesce(
                   (SELECT p.output FROM {{schema}}.job_dependencies AS d
                      JOIN {{schema}}.jobs AS p ON p.id = d.parent_id
                     WHERE d.child_id = j.id ORDER BY p.id LIMIT 1), 'null'::json)
               WHEN 'parents' THEN (
                   SELECT json_build_object('ids', json_agg(p.id ORDER BY p.id),
                                            'statuses', json_agg(p.status ORDER BY p.id),
                                            'results', json_agg(p.output ORDER BY p.id))
                     FROM {{schema}}.job_dependencies AS d
                     JOIN {{schema}}.jobs AS p ON p.id = d.parent_id
                    WHERE d.child_id = j.id)
               ELSE j.input END
     WHERE j.id = ANY($1::bigint[]) AND j.status = 'waiting'
    RETURNING j.id, j.type, j.attempts, j.last_message
)
INSERT INTO {{schema}}.job_events (job_id, job_type, kind, status, attempt, message, actor, at)
SELECT id, type, 'status', 'queued', attempts, last_message, 'dependencies', now() FROM upd
 WHERE (SELECT {{schema}}.events_fence()) ORDER BY id
"""


class PostgresDependencies:
    """Edges and waiting jobs on one asyncpg connection in a transaction."""

    def __init__(self, store: PostgresBase, conn: asyncpg.Connection) -> None:
        self.store = store
        self.conn = conn

    async def edges(self, parent_ids: Sequence[int]) -> list[Edge]:
        rows = await self.conn.fetch(self.store.sql(EDGES), list(parent_ids))
        return [Edge(r[0], r[1], r[2]) for r in rows]

    async def waiting(self, child_ids: Sequence[int]) -> dict[int, int]:
        rows = await self.conn.fetch(self.store.sql(WAITING), list(child_ids))
        return {r[0]: r[1] for r in rows}

    async def settle(
        self, decrements: Mapping[int, int], queued: Sequence[int], skipped: Mapping[int, str]
    ) -> None:
        await self.conn.execute(
            self.store.sql(DECREMENT), list(decrements), list(decrements.values())
        )
        if skipped:
            await self.conn.execute(self.store.sql(SKIP), list(skipped), list(skipped.values()))
        if queued:
            await self.conn.execute(self.store.sql(QUEUE), list(queued))

    async def link(self, edges: Sequence[Edge]) -> dict[int, str]:
        await self.conn.execute(
            self.store.sql(ADD_EDGES),
            [e.parent_id for e in edges],
            [e.child_id for e in edges],
            [e.on_failure for e in edges],
        )
        parents = sorted({e.parent_id for e in edges})
        rows = await self.conn.fetch(self.store.sql(PARENTS), parents)
        return {r[0]: r[1] for r in rows}
