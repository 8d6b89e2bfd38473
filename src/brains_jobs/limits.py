"""Limits that hold across every worker: how many jobs of a key run at once, and how
many start per period.

A job type declares them (`@bj.job(..., limits=[bj.Concurrency("openai", 16),
bj.Rate("openai", 500, per="1m")])`); a key may depend on the input
(`bj.Concurrency(lambda inp: f"acct:{inp.account_id}", 2)`). The values given in code
are a key's first settings; `Runtime.set_limit` changes them for good, for every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .durations import parse_seconds
from .exceptions import ConfigurationError

KeyOf = str | Callable[[Any], str]


def _check_key(key: object) -> None:
    if not (callable(key) or (isinstance(key, str) and 0 < len(key) <= 200)):
        raise ConfigurationError(
            f"a limit key is a string of 1-200 characters or a function, got {key!r}"
        )


@dataclass(frozen=True, slots=True)
class Concurrency:
    """At most `limit` jobs with this key run at once, over all workers."""

    key: KeyOf
    limit: int

    def __post_init__(self) -> None:
        _check_key(self.key)
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError(f"concurrency limit {self.limit!r}: at least 1")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` jobs with this key start per `per` (seconds, a timedelta, or
    text such as `1m`), spaced evenly; with `burst` above 1, up to `burst` may start
    at once (and then `count + burst - 1` in one period at most).
    """

    key: KeyOf
    count: int
    per: float | str | timedelta = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        _check_key(self.key)
        if not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(f"rate {self.count!r}: at least 1 per period")
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"rate burst {self.burst!r}: at least 1")
        seconds = parse_seconds(self.per, name="rate period")
        if seconds <= 0:
            raise ConfigurationError("rate period: must be longer than zero")
        object.__setattr__(self, "per", seconds)

    @property
    def period(self) -> float:
        """`per` in seconds."""
        assert isinstance(self.per, float)
        return self.per


Limit = Concurrency | Rate


@dataclass(frozen=True, slots=True)
class KeySettings:
    """One key's settings: a concurrency limit, a rate, or both (None: no such limit)."""

    key: str
    concurrency: int | None = None
    rate: int | None = None
    per: float | None = None
    burst: int = 1


def key_settings(limits: tuple[Limit, ...], inp: Any) -> tuple[KeySettings, ...]:
    """The settings of each key of `limits` for input `inp` (a key function is called
    with the validated input); two limits on one key are one key's settings.
    """
    merged: dict[str, KeySettings] = {}
    for limit in limits:
        key = limit.key(inp) if callable(limit.key) else limit.key
        if not isinstance(key, str) or not 0 < len(key) <= 200:
            raise ConfigurationError(f"a limit key function returned {key!r}: expected text")
        current = merged.get(key, KeySettings(key))
        if isinstance(limit, Concurrency):
            current = KeySettings(key, limit.limit, current.rate, current.per, current.burst)
        else:
            current = KeySettings(key, current.concurrency, limit.count, limit.period, limit.burst)
        merged[key] = current
    return tuple(merged.values())
