"""The SQLite store's access to dependencies inside a write transaction (see
`brains_jobs.store.dependencies` for the rules it applies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text

from ..dependencies import Edge

if TYPE_CHECKING:
    from .driver import Executes

EDGES = text("""
SELECT parent_id, child_id, on_failure FROM job_dependencies
 WHERE parent_id IN (SELECT value FROM json_each(:ids))
""")

WAITING = text("""
SELECT id, pending_parents FROM jobs
 WHERE id IN (SELECT value FROM json_each(:ids)) AND +status = 'waiting'
""")

ADD_EDGES = text("""
INSERT INTO job_dependencies (parent_id, child_id, on_failure)
SELECT e.value ->> 0, e.value ->> 1, e.value ->> 2 FROM json_each(:edges) AS e
 WHERE true
ON CONFLICT DO NOTHING
""")

PARENTS = text("""
UPDATE jobs SET has_children = 1
 WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id, status
""")

DECREMENT = text("""
UPDATE jobs SET pending_parents = pending_parents - d.value ->> 1
  FROM json_each(:decrements) AS d
 WHERE jobs.id = CAST(d.value ->> 0 AS INTEGER)
""")

SKIP = text("""
UPDATE jobs
   SET status = 'skipped', finished_at = :now, updated_at = :now,
       last_message = s.value ->> 1, last_actor = 'dependencies'
  FROM json_each(:skipped) AS s
 WHERE jobs.id = CAST(s.value ->> 0 AS INTEGER) AND +jobs.status = 'waiting'
""")

# A step of a workflow takes its input from its parents' outputs, in parent id order.
QUEUE = text("""
UPDATE jobs
   SET status = 'queued', run_at = max(run_at, :now), updated_at = :now,
       last_message = 'the jobs it waited for are done', last_actor = 'dependencies',
       input = CASE input_from
           WHEN 'parent' THEN coalesce(
               (SELECT p.output FROM job_dependencies AS d JOIN jobs AS p ON p.id = d.parent_id
                 WHERE d.child_id = jobs.id ORDER BY p.id LIMIT 1), 'null')
           WHEN 'parents' THEN (
               SELECT json_object('ids', json_group_array(p.id),
                                  'statuses', json_group_array(p.status),
                                  'results', json_group_array(json(coalesce(p.output, 'null'))))
                 FROM (SELECT p.id, p.status, p.output
                         FROM job_dependencies AS d JOIN jobs AS p ON p.id = d.parent_id
                        WHERE d.child_id = jobs.id ORDER BY p.id) AS p)
           ELSE input END
 WHERE id IN (SELECT value FROM json_each(:ids)) AND +status = 'waiting'
""")


class SQLiteDependencies:
    """Edges and waiting jobs on one SQLite connection in a write transaction."""

    def __init__(self, conn: Executes, now: float) -> None:
        self.conn = conn
        self.now = now

    async def edges(self, parent_ids: Sequence[int]) -> list[Edge]:
        rows = await self.conn.execute(EDGES, {"ids": json.dumps(list(parent_ids))})
        return [Edge(r[0], r[1], r[2]) for r in rows]

    async def waiting(self, child_ids: Sequence[int]) -> dict[int, int]:
        rows = await self.conn.execute(WAITING, {"ids": json.dumps(list(child_ids))})
        return {r[0]: r[1] for r in rows}

    async def settle(
        self, decrements: Mapping[int, int], queued: Sequence[int], skipped: Mapping[int, str]
    ) -> None:
        rows = json.dumps([[c, n] for c, n in decrements.items()])
        await self.conn.execute(DECREMENT, {"decrements": rows})
        if skipped:
            params = {"skipped": json.dumps(list(skipped.items())), "now": self.now}
            await self.conn.execute(SKIP, params)
        if queued:
            await self.conn.execute(QUEUE, {"ids": json.dumps(list(queued)), "now": self.now})

    async def link(self, edges: Sequence[Edge]) -> dict[int, str]:
        """Record new edges; mark their parents; return the parents' statuses."""
        rows = json.dumps([[e.parent_id, e.child_id, e.on_failure] for e in edges])
        await self.conn.execute(ADD_EDGES, {"edges": rows})
        parents = sorted({e.parent_id for e in edges})
        found = await self.conn.execute(PARENTS, {"ids": json.dumps(parents)})
        return {r[0]: r[1] for r in found}
