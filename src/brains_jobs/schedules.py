"""Recurring jobs as values: when a schedule ticks (`Cron`, `Every`), and what became of
its ticks (`ScheduleInfo`, `Tick`).

Values only, checked when they are made: a cron expression that cronsim cannot read or
that never matches, an unknown time zone, an interval that is not a whole number of
seconds, or a policy that does not exist is a `ConfigurationError` naming the problem.

A tick is an instant (UTC, whole seconds). `next_after(t)` is the first tick strictly
after `t`; every process computes the same ticks, which is what makes a tick a key.

Cron expressions are evaluated by cronsim in their time zone, the way Debian cron runs
them across daylight-saving changes. An expression whose minute and hour fields are both
fixed (neither starts with `*`: `30 2 * * *`, `0 9,17 * * MON-FRI`) follows the wall
clock: a time that does not exist on the day the clocks go forward runs once, at the
first minute after the gap (02:30 runs at 03:00), and a time that occurs twice on the
day they go back runs once, at its first occurrence. Other expressions (`*/15 * * * *`,
`0 * * * *`, six fields with seconds) follow elapsed time: the hour that is skipped has
no ticks and the hour that repeats ticks twice, so that an hourly job still runs every
hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict

from .durations import parse_seconds
from .exceptions import ConfigurationError

#: What becomes of the ticks that passed while no scheduler ran (found more than
#: `grace` seconds late): `skip` none runs, `latest` the newest one runs (unless a tick
#: on time runs anyway), `all` each runs (the newest `MISSED_BOUND` of them).
MISSED = ("skip", "latest", "all")
MISSED_BOUND = 100
#: Seconds a tick may be late and still count as on time.
DEFAULT_GRACE = 60.0
#: Where `Every` ticks are counted from unless an anchor is given.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Names of schedules: those of job types, and `job:<type>` for definition-level ones.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,139}\Z")
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_TICK = timedelta(microseconds=1)


def check_name(name: Any) -> str:
    """A schedule's name, or `ConfigurationError`: 1-140 letters, digits, `_.:-`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"invalid schedule name {name!r}: use 1-140 letters, digits, '_.:-',"
            " starting with a letter or digit"
        )
    return name


def tick_text(tick: datetime) -> str:
    """A tick in ISO 8601, UTC, to the second: `2024-03-31T01:00:00Z`."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tick_key(name: str, tick: datetime) -> str:
    """The unique key of the job of one tick: `schedule:<name>:<tick>`."""
    return f"schedule:{name}:{tick_text(tick)}"


def zone(name: Any) -> tzinfo:
    """The time zone named `name` (IANA, e.g. `Europe/Paris`), or `ConfigurationError`."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"time zone: expected an IANA name, got {name!r}")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {name!r}: {exc}") from None


def _missed(value: Any) -> str:
    if value not in MISSED:
        raise ConfigurationError(f"missed: must be one of {', '.join(MISSED)}, got {value!r}")
    return str(value)


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ConfigurationError(f"{what}: expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Cron:
    """Ticks at the times a cron expression names, in a time zone.

    ``Cron("0 9 * * MON", timezone="Europe/Paris")``: five fields (minute, hour, day of
    month, month, day of week; `MON`-`SUN`, `JAN`-`DEC`, `L`, `#`), or six with seconds
    first, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. See the module for
    what happens when the clocks change. `missed` and `grace` say what becomes of ticks
    that passed while no scheduler ran.
    """

    expr: str
    timezone: str = "UTC"
    missed: str = "latest"
    grace: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        if not isinstance(self.expr, str) or not self.expr.strip():
            raise ConfigurationError(f"cron expression: expected text, got {self.expr!r}")
        expr = " ".join(self.expr.split())
        object.__setattr__(self, "expr", expr)
        zone(self.timezone)  # raises for an unknown zone
        object.__setattr__(self, "missed", _missed(self.missed))
        object.__setattr__(self, "grace", parse_seconds(self.grace, name="grace"))
        try:
            first = next(CronSim(self._evaluated, datetime.now(zone(self.timezone))), None)
        except CronSimError as exc:
            raise ConfigurationError(f"cron expression {expr!r}: {exc}") from None
        if first is None:
            raise ConfigurationError(f"cron expression {expr!r} matches no time in 50 years")

    @property
    def _evaluated(self) -> str:
        return _ALIASES.get(self.expr.lower(), self.expr)

    def next_after(self, t: datetime) -> datetime | None:
        """The first tick strictly after `t` (UTC), or None if there is none."""
        t = _aware(t, "time")
        found = CronSim(self._evaluated, t.astimezone(zone(self.timezone)))
        # In the hour that repeats, the wall clock may lead back before `t`: go on.
        for _ in range(1000):
            candidate = next(found, None)
            if candidate is None:
                return None
            tick = candidate.astimezone(UTC)
            if tick > t:
                return tick
        return None  # pragma: no cover -- cronsim moves forward every step

    def describe(self) -> str:
        """`cron "0 9 * * MON" Europe/Paris`."""
        return f'cron "{self.expr}" {self.timezone}'


@dataclass(frozen=True, slots=True)
class Every:
    """Ticks every `interval` (a `timedelta` or seconds; whole seconds, at least one).

    Ticks are counted from `anchor` (an aware datetime; the Unix epoch by default), so
    every process agrees on them: `Every(timedelta(minutes=5))` ticks at :00, :05, :10...
    of every hour (UTC). The interval is elapsed time: `Every(timedelta(days=1))` keeps
    24 hours between ticks across daylight-saving changes (use `Cron` for wall-clock
    times).
    """

    interval: timedelta
    anchor: datetime | None = None
    missed: str = "latest"
    grace: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        seconds = parse_seconds(self.interval, name="every")
        if seconds < 1 or seconds != int(seconds):
            raise ConfigurationError(
                f"every: the interval must be a whole number of seconds, at least 1;"
                f" got {self.interval!r}"
            )
        object.__setattr__(self, "interval", timedelta(seconds=int(seconds)))
        anchor = EPOCH if self.anchor is None else _aware(self.anchor, "anchor")
        object.__setattr__(self, "anchor", anchor.replace(microsecond=0))
        object.__setattr__(self, "missed", _missed(self.missed))
        object.__setattr__(self, "grace", parse_seconds(self.grace, name="grace"))

    @property
    def seconds(self) -> int:
        """The interval in seconds."""
        return int(self.interval.total_seconds())

    def next_after(self, t: datetime) -> datetime | None:
        """The first tick strictly after `t` (UTC)."""
        t = _aware(t, "time")
        anchor = self.anchor or EPOCH
        steps = (t - anchor) // self.interval + 1
        return anchor + steps * self.interval

    def describe(self) -> str:
        """`every 300s`, with its anchor when it is not the epoch."""
        text = f"every {self.seconds}s"
        if self.anchor not in (None, EPOCH):
            text += f" from {tick_text(self.anchor)}"
        return text


Schedule = Cron | Every


def first_at_or_after(spec: Schedule, t: datetime) -> datetime | None:
    """The first tick of `spec` at `t` or after it."""
    return spec.next_after(_aware(t, "time") - _TICK)


def check_schedule(value: Any, what: str = "schedule") -> Schedule:
    """`value` if it is a `Cron` or an `Every`, else `ConfigurationError`."""
    if not isinstance(value, Cron | Every):
        raise ConfigurationError(f"{what}: expected bj.Cron(...) or bj.Every(...), got {value!r}")
    return value


class ScheduleInfo(BaseModel):
    """A recurring job as stored: its name, job type, timing and options, when it runs
    next and when it ran last, and whether it is paused.

    `source` is `runtime` for schedules added with `Runtime.schedule`, `definition` for
    those of `@bj.job(..., schedule=...)` (named `job:<type>`). `last_run_at` is the tick
    of the latest job it enqueued (`last_job_id`).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    job_type: str
    schedule: Cron | Every
    queue: str
    priority: int
    max_attempts: int
    input: Any
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    owner: str | None = None
    source: Literal["runtime", "definition"] = "runtime"
    paused: bool = False
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_job_id: int | None = None
    created_at: datetime
    updated_at: datetime


class Tick(BaseModel):
    """What became of one tick of a schedule.

    `outcome` is `enqueued` (its job is `job_id`), `skipped` (the schedule was paused,
    its input no longer validates, or a job already held the tick's key: `detail` says
    which) or `missed` (it passed while no scheduler ran, and the schedule's `missed`
    policy left it out).
    """

    model_config = ConfigDict(frozen=True)

    schedule: str
    tick: datetime
    outcome: Literal["enqueued", "skipped", "missed"]
    job_id: int | None = None
    detail: str | None = None
    recorded_at: datetime


__all__ = [
    "DEFAULT_GRACE",
    "EPOCH",
    "MISSED",
    "MISSED_BOUND",
    "Cron",
    "Every",
    "Schedule",
    "ScheduleInfo",
    "Tick",
    "check_name",
    "check_schedule",
    "first_at_or_after",
    "tick_key",
    "tick_text",
    "zone",
]
