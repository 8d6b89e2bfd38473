"""Every option of brains-jobs in one settings object: one default, one `BRAINS_JOBS_*`
environment variable each.

The runtime, the worker, the CLI and the web server all read `Settings`: a keyword
argument or a CLI flag overrides the environment variable, which overrides the default.
Durations accept seconds or text such as `30s`, `5m`, `12h`, `7d`; lists are
comma-separated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .durations import format_seconds, parse_seconds
from .exceptions import ConfigurationError

ENV_PREFIX = "BRAINS_JOBS_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///brains_jobs.db"


def _seconds(value: Any) -> Any:
    if isinstance(value, str | int | float | timedelta) and not isinstance(value, bool):
        return parse_seconds(value)
    return value


def _optional_seconds(value: Any) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in _FOREVER):
        return None
    return _seconds(value)


def _names(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_FOREVER = frozenset({"", "never", "forever", "keep", "none", "off"})

Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
"""A duration in seconds; reads `30s`, `5m`, `12h`, `7d` or a number."""

KeepFor = Annotated[float | None, BeforeValidator(_optional_seconds)]
"""A retention period in seconds; `never` (or empty) keeps jobs forever."""

Names = Annotated[list[str], NoDecode, BeforeValidator(_names)]
"""A list of names; reads `a,b,c`."""


class Settings(BaseSettings):
    """Every option, with its default and its `BRAINS_JOBS_<NAME>` variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True
    )

    # -- the database and what lives beside it --------------------------------------
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="the job database: sqlite+aiosqlite:///file.db or postgresql+asyncpg://...",
    )
    artifacts: str = Field(
        "brains_jobs_artifacts",
        description="the artifact store: a directory or a URL a plugin handles; each database"
        " keeps its artifacts in a folder of its own inside it",
    )
    statement_timeout: Seconds = Field(
        10.0, description="the longest a single database statement may take"
    )
    max_payload: int = Field(
        1024 * 1024, ge=1, description="the largest job input or output, in bytes of UTF-8 JSON"
    )

    # -- plugins --------------------------------------------------------------------
    plugin_modules: Names = Field(
        default_factory=list,
        description="plugin modules to load besides the installed ones (package.module[:attr])",
    )
    plugins_allow: Names | None = Field(
        None, description="load only these installed plugins (entry point names); unset: all"
    )
    plugins_deny: Names = Field(
        default_factory=list, description="never load these installed plugins (entry point names)"
    )

    # -- workers --------------------------------------------------------------------
    concurrency: int = Field(10, ge=1, description="jobs a worker runs at once")
    queues: Names = Field(
        default_factory=list, description="the queues a worker takes jobs from; empty: all"
    )
    lease: Seconds = Field(
        30.0, gt=0, description="how long a claimed job is leased to its worker between renewals"
    )
    shutdown_timeout: Seconds = Field(
        30.0, description="how long running jobs get to finish after the first SIGTERM/SIGINT"
    )
    flush_timeout: Seconds = Field(
        10.0,
        description="at shutdown, how long the worker keeps trying to write unwritten results"
        " before it gives their jobs back to the queue",
    )
    prefetch: int | None = Field(
        None, ge=0, description="claimed jobs that may wait for a free slot; unset: adaptive"
    )
    max_prefetch: int = Field(1000, ge=1, description="the most an adaptive prefetch grows to")
    worker_id: str | None = Field(
        None, description="the worker's name in the workers registry; unset: host:pid:random"
    )
    wait_for_db: Seconds = Field(
        60.0, description="at start, how long a worker retries an unreachable database"
    )
    burst: bool = Field(False, description="exit once no job is ready or running")
    stall_threshold: Seconds = Field(
        1.0, description="an event loop blocked this long is logged with the job that blocked it"
    )

    # -- maintenance ------------------------------------------------------------------
    leader_lease: Seconds = Field(
        10.0, gt=0, description="how long a leader holds office between renewals"
    )
    rescue_interval: Seconds = Field(
        5.0, gt=0, description="how often a worker looks for jobs whose lease expired"
    )
    prune_interval: Seconds = Field(60.0, gt=0, description="how often the leader prunes")
    prune_batch: int = Field(1000, ge=1, description="jobs deleted per pruning statement")
    retention_succeeded: KeepFor = Field(
        86400.0, description="how long succeeded jobs are kept; never: forever"
    )
    retention_failed: KeepFor = Field(
        14 * 86400.0, description="how long failed jobs are kept; never: forever"
    )
    retention_cancelled: KeepFor = Field(
        7 * 86400.0, description="how long cancelled (and skipped) jobs are kept; never: forever"
    )

    # -- metrics and tracing ------------------------------------------------------------
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="serve Prometheus metrics at /metrics on this port of the worker process"
        " (the web extra); unset: no server",
    )
    metrics_interval: Seconds = Field(
        15.0, gt=0, description="how often the leader counts the queues for the metrics gauges"
    )
    tracing: bool = Field(
        False,
        description="make OpenTelemetry spans of enqueues and attempts, carrying the trace"
        " context in the job (the otel extra)",
    )

    # -- logs -------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="log level of the command line (logs go to standard error)"
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text lines for people, or one JSON object per line for shippers"
    )

    # -- the HTTP API (`brains-jobs serve`, the `web` extra) -------------------------------
    api_tokens: SecretStr | None = Field(
        None,
        description="API tokens: 'TOKEN USER ROLE' entries separated by commas (roles user,"
        " viewer, admin); a file is safer",
    )
    api_tokens_file: str | None = Field(
        None, description="a file of 'TOKEN USER ROLE' lines (# starts a comment)"
    )
    session_secret: SecretStr | None = Field(
        None,
        description="the key that signs the dashboard's session cookies (16 bytes or more);"
        " unset: a new one per process, so sessions end when the server restarts",
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def retention(self) -> Retention:
        """The retention periods as one value."""
        return Retention(
            succeeded=self.retention_succeeded,
            failed=self.retention_failed,
            cancelled=self.retention_cancelled,
        )


def load_settings(**given: Any) -> Settings:
    """`Settings` from the environment, overridden by the options `given` that are not
    None; a bad value is a `ConfigurationError` naming the option and its variable.
    """
    retention = given.pop("retention", None)
    if retention is not None:
        if not isinstance(retention, Retention):
            raise ConfigurationError(
                f"retention must be a brains_jobs.Retention, got {retention!r}"
            )
        given.update(
            retention_succeeded=_keep(retention.succeeded),
            retention_failed=_keep(retention.failed),
            retention_cancelled=_keep(retention.cancelled),
        )
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    except ConfigurationError:
        raise
    except ValueError as exc:  # e.g. a list variable that is not valid
        raise ConfigurationError(str(exc)) from None


def _keep(value: float | None) -> float | str:
    return "never" if value is None else value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        env = f"{ENV_PREFIX}{name.upper()}"
        msg = err.get("msg", "invalid")
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, ConfigurationError):
            msg = str(ctx_error)
        parts.append(f"{name} ({env}): {msg}")
    return "invalid settings: " + "; ".join(parts)


def env_name(field: str) -> str:
    """The environment variable of settings field `field`."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe_default(field: str) -> str:
    """The default of settings field `field` as a person writes it."""
    info = Settings.model_fields[field]
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(value) or "none"
    if isinstance(value, float) and any(
        isinstance(m, BeforeValidator) and m.func in (_seconds, _optional_seconds)
        for m in info.metadata
    ):
        return format_seconds(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished jobs are kept before the leader prunes them, per final status.

    Each period is a duration (`timedelta`, seconds, or text such as `7d`) or None to
    keep those jobs forever. Skipped jobs follow `cancelled`. The defaults: succeeded
    1 day, failed 14 days, cancelled 7 days.
    """

    succeeded: float | None = 86400.0
    failed: float | None = 14 * 86400.0
    cancelled: float | None = 7 * 86400.0

    def __init__(
        self,
        succeeded: float | str | timedelta | None = 86400.0,
        failed: float | str | timedelta | None = 14 * 86400.0,
        cancelled: float | str | timedelta | None = 7 * 86400.0,
    ) -> None:
        for name, value in (("succeeded", succeeded), ("failed", failed), ("cancelled", cancelled)):
            seconds = None if value is None else parse_seconds(value, name=f"retention {name}")
            object.__setattr__(self, name, seconds)

    def periods(self) -> dict[str, float]:
        """Final status -> seconds to keep, for the statuses that are pruned at all."""
        found = {"succeeded": self.succeeded, "failed": self.failed, "cancelled": self.cancelled}
        if self.cancelled is not None:
            found["skipped"] = self.cancelled
        return {status: seconds for status, seconds in found.items() if seconds is not None}
