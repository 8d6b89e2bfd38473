"""Retry delays: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .exceptions import ConfigurationError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before attempt `n + 1` after attempt `n` failed.

    The delay window doubles with every attempt from `base` seconds up to `cap` seconds;
    with `jitter`, each delay is drawn uniformly from the upper half of its window, so
    that a delay is never shorter than the one before it (until the cap is reached) and
    retries of many jobs spread out.
    """

    base: float = 1.0
    cap: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ConfigurationError("retry base and cap must not be negative")
        if self.cap < self.base:
            raise ConfigurationError(f"retry cap ({self.cap}) is below its base ({self.base})")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the failed attempt number `attempt` (1-based)."""
        window = min(self.cap, self.base * 2.0 ** max(0, attempt - 1))
        if not self.jitter:
            return window
        return window * (0.5 + random.random() / 2)
