"""Durations as people write them: `30s`, `5m`, `12h`, `7d`, `1h30m`, `250ms`, or seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from .exceptions import ConfigurationError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"\s*(?:(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ms|s|m|h|d|w)\s*)+")


def parse_seconds(value: str | float | timedelta, *, name: str = "duration") -> float:
    """Seconds from `value`: a number of seconds, a `timedelta`, or text such as `30s`,
    `5m`, `12h`, `7d`, `1h30m`, `250ms`. Negative, infinite and unparsable values raise
    `ConfigurationError` naming `name`.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigurationError(f"{name}: expected a duration, got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip().lower(), name)
    else:
        raise ConfigurationError(f"{name}: expected a duration, got {value!r}")
    if not math.isfinite(seconds):
        raise ConfigurationError(f"{name}: {value!r} is not a finite duration")
    if seconds < 0:
        raise ConfigurationError(f"{name}: {value!r} is negative; durations must not be")
    return seconds


def _parse_text(text: str, name: str) -> float:
    if text.startswith("-"):
        raise ConfigurationError(f"{name}: {text!r} is negative; durations must not be")
    try:
        return float(text)
    except ValueError:
        pass
    if not text or not _WHOLE.fullmatch(text):
        raise ConfigurationError(
            f"{name}: cannot read {text!r} as a duration (use e.g. 30s, 5m, 12h, 7d, or seconds)"
        )
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))


def format_seconds(seconds: float) -> str:
    """`seconds` in the largest unit that divides it: `7d`, `12h`, `90s`, `0.5s`."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
