"""The PostgreSQL store's limits: claiming limited jobs, key settings, throttles (see
`brains_jobs.store.limits` for the rules it applies).

A claim of limited jobs is one transaction: the candidates are locked `FOR UPDATE SKIP
LOCKED` (another claimer's are passed over), then their keys, in key order, `FOR UPDATE
SKIP LOCKED` (a key another claimer is granting is passed over this time, never waited
for), and the running jobs of those keys are counted under those locks: two claimers
never both admit the last place of a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from ...limits import KeySettings
from ...models import LimitInfo
from ..limits import KeyState, admit, limit_info, running_counts, saturated_keys
from ..records import ClaimedJob, ClaimRequest
from . import sql
from .wakeups import PostgresWakeups

RUNNING_KEYS = """
SELECT limit_keys FROM {{schema}}.jobs
 WHERE status = 'running' AND limited AND ($1::text[] IS NULL OR limit_keys && $1::text[])
"""

_KEY_COLUMNS = "key, concurrency, rate, per, burst, tat, blocked_until"

HOT_KEYS = f"""
SELECT {_KEY_COLUMNS} FROM {{{{schema}}}}.limit_keys
 WHERE key = ANY($1::text[]) OR blocked_until > $2 OR (rate IS NOT NULL AND tat > $2)
"""

KEYS = f"""
SELECT {_KEY_COLUMNS} FROM {{{{schema}}}}.limit_keys
 WHERE key = ANY($1::text[]) ORDER BY key
   FOR UPDATE SKIP LOCKED
"""

CANDIDATES = """
SELECT id, limit_keys FROM {{schema}}.jobs
 WHERE status = 'queued' AND crashes = 0 AND limited AND run_at <= now()
   AND type = ANY($1::text[]) AND ($2::text[] IS NULL OR queue = ANY($2::text[]))
   AND NOT (limit_keys && $3::text[])
 ORDER BY priority DESC, run_at, id
 LIMIT $4
   FOR UPDATE SKIP LOCKED
"""

MOVE_TATS = """
UPDATE {{schema}}.limit_keys AS k SET tat = t.tat
  FROM unnest($1::text[], $2::float8[]) AS t(key, tat) WHERE k.key = t.key
"""

ADD_KEYS = """
INSERT INTO {{schema}}.limit_keys (key, concurrency, rate, per, burst)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::float8[], $5::int[])
ON CONFLICT (key) DO NOTHING
"""

SET_KEY = """
INSERT INTO {{schema}}.limit_keys (key, concurrency, rate, per, burst)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key) DO UPDATE
   SET concurrency = excluded.concurrency, rate = excluded.rate, per = excluded.per,
       burst = excluded.burst
"""

THROTTLE = """
UPDATE {{schema}}.limit_keys AS k
   SET blocked_until = greatest(k.blocked_until, extract(epoch FROM now()) + t.secs)
  FROM (SELECT coalesce(t.key, j.key) AS key, max(t.secs) AS secs
          FROM unnest($1::bigint[], $2::float8[], $3::text[]) AS t(id, secs, key)
          LEFT JOIN LATERAL (SELECT unnest(limit_keys) AS key FROM {{schema}}.jobs
                              WHERE id = t.id) AS j ON t.key IS NULL
         GROUP BY 1) AS t
 WHERE k.key = t.key
"""

ALL_KEYS = f"SELECT {_KEY_COLUMNS} FROM {{{{schema}}}}.limit_keys ORDER BY key"


def _state(row: Sequence[Any]) -> KeyState:
    return KeyState(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


class PostgresLimits(PostgresWakeups):
    """Limits on PostgreSQL."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._sql_running_keys = self.sql(RUNNING_KEYS)
        self._sql_hot_keys = self.sql(HOT_KEYS)
        self._sql_keys = self.sql(KEYS)
        self._sql_candidates = self.sql(CANDIDATES)
        # Jobs that crashed a worker before, claimed one at a time by an idle worker.
        self._sql_candidates_isolated = self.sql(CANDIDATES.replace("crashes = 0", "crashes > 0"))
        self._sql_move_tats = self.sql(MOVE_TATS)
        self._sql_add_keys = self.sql(ADD_KEYS)
        self._sql_set_key = self.sql(SET_KEY)
        self._sql_throttle = self.sql(THROTTLE)
        self._sql_all_keys = self.sql(ALL_KEYS)
        self._sql_claim_ids = self.sql(sql.CLAIM_IDS)

    async def _claim_limited(self, request: ClaimRequest) -> list[ClaimedJob]:
        async def claim(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            async with conn.transaction():
                now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
                running = running_counts(
                    r[0] for r in await conn.fetch(self._sql_running_keys, None)
                )
                hot = await conn.fetch(self._sql_hot_keys, list(running), now)
                saturated = saturated_keys([_state(r) for r in hot], running, now)
                rows = await conn.fetch(
                    self._sql_candidates_isolated if request.isolated else self._sql_candidates,
                    list(request.types),
                    None if request.queues is None else list(request.queues),
                    saturated,
                    request.limit * 2,
                )
                candidates = [(r[0], list(r[1])) for r in rows]
                if not candidates:
                    return []
                keys = sorted({k for _, ks in candidates for k in ks})
                states = {s.key: s for s in map(_state, await conn.fetch(self._sql_keys, keys))}
                # Counted again under the keys' locks: what other claimers committed.
                running = running_counts(
                    r[0] for r in await conn.fetch(self._sql_running_keys, list(states))
                )
                ids, tats = admit(candidates, states, running, now, request.limit)
                if not ids:
                    return []
                if tats:
                    await conn.execute(self._sql_move_tats, list(tats), list(tats.values()))
                claimed: list[asyncpg.Record] = await conn.fetch(
                    self._sql_claim_ids, request.token, request.lease, request.worker_id, ids
                )
                return claimed

        rows = await self.run("claim", claim)
        if rows:
            self.written()
        return [
            ClaimedJob(
                r[0], r[1], r[2], r[3], r[4], r[5], request.token, r[6], r[7], r[8], r[9], r[10]
            )
            for r in rows
        ]

    async def _add_keys(self, conn: asyncpg.Connection, settings: Sequence[KeySettings]) -> None:
        await conn.execute(
            self._sql_add_keys,
            [s.key for s in settings],
            [s.concurrency for s in settings],
            [s.rate for s in settings],
            [s.per for s in settings],
            [s.burst for s in settings],
        )

    async def _throttle(self, conn: asyncpg.Connection, throttles: Sequence[Any]) -> None:
        await conn.execute(
            self._sql_throttle,
            [t[0] for t in throttles],
            [t[1] for t in throttles],
            [t[2] for t in throttles],
        )

    async def set_limit(self, settings: KeySettings) -> None:
        await self.fetch(
            "limit",
            self._sql_set_key,
            settings.key,
            settings.concurrency,
            settings.rate,
            settings.per,
            settings.burst,
            idempotent=True,
        )
        self.work_signal.notify()

    async def limits(self) -> list[LimitInfo]:
        rows = await self.read(self._sql_all_keys)
        running = running_counts(r[0] for r in await self.read(self._sql_running_keys, None))
        return [limit_info(s, running) for s in map(_state, rows)]
