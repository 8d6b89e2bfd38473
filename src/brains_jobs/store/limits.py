"""Limits at claim time: which jobs of limited types may start now, decided here once
for every store (see `brains_jobs.limits` for the values a job type declares).

A claim of limited jobs reads the keys' settings and the jobs running under each key,
and admits candidates in order (best first) while every key of a candidate has room:
fewer running than its concurrency limit, not blocked by a `Throttled`, and a start
allowed by its rate (GCRA: a key's theoretical arrival time moves one period per start;
a start is allowed while it is no more than `burst - 1` periods ahead of now). A
saturated key never holds back the jobs of other keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..models import LimitInfo


@dataclass(frozen=True, slots=True)
class KeyState:
    """A key as stored: its settings and its state (times in epoch seconds)."""

    key: str
    concurrency: int | None
    rate: int | None
    per: float | None
    burst: int
    tat: float
    blocked_until: float

    @property
    def interval(self) -> float | None:
        """Seconds between two starts at the key's rate."""
        if self.rate is None or self.per is None:
            return None
        return self.per / self.rate

    def saturated(self, running: int, tat: float, now: float) -> bool:
        """True when no job of this key may start now."""
        if self.blocked_until > now:
            return True
        if self.concurrency is not None and running >= self.concurrency:
            return True
        interval = self.interval
        return interval is not None and max(tat, now) - now > (self.burst - 1) * interval


def limit_info(state: KeyState, running: Mapping[str, int]) -> LimitInfo:
    """What `limits()` tells of one key: its settings, running jobs and throttle."""
    blocked = state.blocked_until
    return LimitInfo(
        key=state.key,
        concurrency=state.concurrency,
        rate=state.rate,
        per=state.per,
        burst=state.burst,
        running=running.get(state.key, 0),
        blocked_until=datetime.fromtimestamp(blocked, UTC) if blocked else None,
    )


def running_counts(rows: Iterable[Sequence[str]]) -> Counter[str]:
    """Jobs running under each key, from the keys of every running limited job."""
    counts: Counter[str] = Counter()
    for keys in rows:
        counts.update(keys)
    return counts


def saturated_keys(states: Iterable[KeyState], running: Mapping[str, int], now: float) -> list[str]:
    """The keys no job may start under now."""
    return sorted(s.key for s in states if s.saturated(running.get(s.key, 0), s.tat, now))


def admit(
    candidates: Sequence[tuple[int, Sequence[str]]],
    states: Mapping[str, KeyState],
    running: Mapping[str, int],
    now: float,
    limit: int,
) -> tuple[list[int], dict[str, float]]:
    """The candidates (id, keys), in order, that may start now, at most `limit`, and
    the new theoretical arrival times of the rate-limited keys they use. A candidate
    with a key missing from `states` (locked by another claimer) is passed over.
    """
    counts = Counter(running)
    tats = {k: s.tat for k, s in states.items()}
    admitted: list[int] = []
    moved: dict[str, float] = {}
    for job_id, keys in candidates:
        if len(admitted) >= limit:
            break
        if any(k not in states or states[k].saturated(counts[k], tats[k], now) for k in keys):
            continue
        admitted.append(job_id)
        for k in keys:
            counts[k] += 1
            interval = states[k].interval
            if interval is not None:
                tats[k] = moved[k] = max(tats[k], now) + interval
    return admitted, moved
