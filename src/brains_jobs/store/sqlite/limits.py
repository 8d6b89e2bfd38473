"""The SQLite store's limits: claiming limited jobs, key settings, throttles (see
`brains_jobs.store.limits` for the rules it applies).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, text

from ...limits import KeySettings
from ...models import LimitInfo
from ..limits import KeyState, admit, limit_info, running_counts, saturated_keys
from ..records import ClaimedJob, ClaimRequest
from . import sql
from .connection import SQLiteBase

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .driver import Executes

RUNNING_KEYS = text("""
SELECT limit_keys FROM jobs INDEXED BY jobs_limited_running WHERE status = 'running' AND limited
""")

HOT_KEYS = text("""
SELECT key, concurrency, rate, per, burst, tat, blocked_until FROM limit_keys
 WHERE key IN (SELECT value FROM json_each(:keys))
    OR blocked_until > :now OR (rate IS NOT NULL AND tat > :now)
""")

KEYS = text("""
SELECT key, concurrency, rate, per, burst, tat, blocked_until FROM limit_keys
 WHERE key IN (SELECT value FROM json_each(:keys))
""")

# The ready limited jobs none of whose keys is saturated, best first. A key is found in
# a job's keys (a compact JSON array) as `,"key",` in `,` + its elements + `,`: a quote
# inside a key is escaped, so the match is exact, and far cheaper per row than json_each.
_CANDIDATES = """
SELECT id, limit_keys FROM jobs {index}
 WHERE status = 'queued' AND {crashes} AND limited AND run_at <= :now
   AND type IN (SELECT value FROM json_each(:types))
   AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
   {saturated}
 ORDER BY priority DESC, run_at, id
 LIMIT :limit
"""
_NOT_SATURATED = "AND instr(',' || substr(limit_keys, 2, length(limit_keys) - 2) || ',', :s{i}) = 0"


# Whether any ready limited job's first key is not saturated: one index look-up per key,
# so that a claim whose best candidates are all held back by saturated keys learns at
# once whether looking deeper can find anything.
OPEN_KEYS = text("""
SELECT 1 FROM limit_keys AS k
 WHERE k.key NOT IN (SELECT value FROM json_each(:saturated))
   AND EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_limited_key
                WHERE limit_keys ->> 0 = k.key AND status = 'queued' AND crashes = 0
                  AND limited AND run_at <= :now
                  AND type IN (SELECT value FROM json_each(:types))
                  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues))))
 LIMIT 1
""")


def candidates_statement(
    saturated: Sequence[str], *, isolated: bool = False
) -> tuple[TextClause, dict[str, str]]:
    """The candidates statement passing over the `saturated` keys, and its parameters;
    `isolated`: jobs that crashed a worker before, instead of the others.
    """
    checks = "\n   ".join(_NOT_SATURATED.format(i=i) for i in range(len(saturated)))
    params = {f"s{i}": f",{json.dumps(key)}," for i, key in enumerate(saturated)}
    statement = _CANDIDATES.format(
        index="" if isolated else "INDEXED BY jobs_limited",
        crashes="crashes > 0" if isolated else "crashes = 0",
        saturated=checks,
    )
    return text(statement), params


MOVE_TATS = text("""
UPDATE limit_keys SET tat = t.value ->> 1
  FROM json_each(:tats) AS t WHERE limit_keys.key = t.value ->> 0
""")

ADD_KEYS = text("""
INSERT INTO limit_keys (key, concurrency, rate, per, burst)
SELECT k.value ->> 0, k.value ->> 1, k.value ->> 2, k.value ->> 3, k.value ->> 4
  FROM json_each(:keys) AS k WHERE true
ON CONFLICT (key) DO NOTHING
""")

SET_KEY = text("""
INSERT INTO limit_keys (key, concurrency, rate, per, burst)
VALUES (:key, :concurrency, :rate, :per, :burst)
ON CONFLICT (key) DO UPDATE
   SET concurrency = excluded.concurrency, rate = excluded.rate, per = excluded.per,
       burst = excluded.burst
""")

THROTTLE = text("""
UPDATE limit_keys SET blocked_until = max(blocked_until, :now + t.value ->> 1)
  FROM json_each(:throttles) AS t
 WHERE limit_keys.key = t.value ->> 2
    OR (t.value ->> 2 IS NULL AND limit_keys.key IN (
            SELECT k.value FROM jobs, json_each(jobs.limit_keys) AS k
             WHERE jobs.id = CAST(t.value ->> 0 AS INTEGER)))
""")

ALL_KEYS = text("""
SELECT key, concurrency, rate, per, burst, tat, blocked_until FROM limit_keys ORDER BY key
""")


def _state(row: Sequence[Any]) -> KeyState:
    return KeyState(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def _running(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(RUNNING_KEYS)
    return dict(running_counts(json.loads(r[0]) for r in rows))


class SQLiteLimits(SQLiteBase):
    """Limits on SQLite: one writer at a time, so a claim needs no locks of its own."""

    async def _claim_limited(self, request: ClaimRequest) -> list[ClaimedJob]:
        now = time.time()
        base = {
            "types": json.dumps(request.types),
            "queues": None if request.queues is None else json.dumps(request.queues),
        }

        async def candidates(
            conn: AsyncConnection, skipped: Sequence[str], limit: int
        ) -> list[tuple[int, list[str]]]:
            statement, skip = candidates_statement(skipped, isolated=request.isolated)
            rows = await conn.execute(statement, {**base, **skip, "now": now, "limit": limit})
            return [(r[0], json.loads(r[1])) for r in rows]

        async def admitted(
            conn: AsyncConnection, found: list[tuple[int, list[str]]], running: dict[str, int]
        ) -> tuple[list[int], dict[str, float]]:
            keys = sorted({k for _, ks in found for k in ks})
            rows = await conn.execute(KEYS, {"keys": json.dumps(keys)})
            states = {s.key: s for s in map(_state, rows)}
            return admit(found, states, running, now, request.limit)

        async def claim(conn: AsyncConnection) -> list[Any]:
            running = await _running(conn)
            hot = await conn.execute(HOT_KEYS, {"keys": json.dumps(list(running)), "now": now})
            saturated = saturated_keys([_state(r) for r in hot], running, now)
            # The best candidates first; only when saturated keys hold all of them back,
            # and some ready job's key is free, the ones behind them (a deeper scan).
            wanted = request.limit * 2
            found = await candidates(conn, (), wanted)
            if not found:
                return []
            ids, tats = await admitted(conn, found, running)
            if not ids and saturated and len(found) == wanted:
                open_keys = {**base, "saturated": json.dumps(saturated), "now": now}
                if (await conn.execute(OPEN_KEYS, open_keys)).first() is None:
                    return []
                found = await candidates(conn, saturated, wanted)
                ids, tats = await admitted(conn, found, running)
            if not ids:
                return []
            if tats:
                await conn.execute(MOVE_TATS, {"tats": json.dumps(list(tats.items()))})
            claim = {
                "ids": json.dumps(ids),
                "token": request.token,
                "now": now,
                "lease": request.lease,
                "worker": request.worker_id,
            }
            return list((await conn.execute(sql.CLAIM_IDS, claim)).all())

        rows = sorted(await self._write(claim), key=lambda r: (-r[7], r[8], r[0]))
        if rows:
            self.written()
        return [claimed_job(r, request.token, now) for r in rows]

    @staticmethod
    async def _add_keys(conn: Executes, settings: Sequence[KeySettings]) -> None:
        rows = [[s.key, s.concurrency, s.rate, s.per, s.burst] for s in settings]
        await conn.execute(ADD_KEYS, {"keys": json.dumps(rows)})

    @staticmethod
    async def _throttle(conn: Executes, throttles: Sequence[Any], now: float) -> None:
        await conn.execute(THROTTLE, {"throttles": json.dumps(list(throttles)), "now": now})

    async def set_limit(self, settings: KeySettings) -> None:
        params = {
            "key": settings.key,
            "concurrency": settings.concurrency,
            "rate": settings.rate,
            "per": settings.per,
            "burst": settings.burst,
        }

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(SET_KEY, params)

        await self._write(write)
        self.work_signal.notify()

    async def limits(self) -> list[LimitInfo]:
        async def read(conn: AsyncConnection) -> list[LimitInfo]:
            running = await _running(conn)
            return [limit_info(s, running) for s in map(_state, await conn.execute(ALL_KEYS))]

        return await self._read(read)


def claimed_job(r: Any, token: str, now: float) -> ClaimedJob:
    """A row of the claim statements (`sql.CLAIM`, `sql.CLAIM_IDS`) claimed at `now`."""
    return ClaimedJob(
        r[0], r[1], r[2], r[3], r[4], r[5], token, bool(r[6]), bool(r[9]), r[10], r[11], now - r[8]
    )
