"""Logging for the command line: text lines for people, or one JSON object per line for
log shippers. At `debug`, the lines are about jobs: the database drivers stay at
`warning` (their statements are not what an operator debugs).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_QUIET = ("sqlalchemy", "aiosqlite", "asyncpg", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the extra fields
    (`job_id`, `job_type`, `attempt`...) and the traceback, if any.
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class _JobFields(logging.Filter):
    """Adds ` [job N]` to text lines that carry a job id."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = getattr(record, "job_id", None)
        record.job = (
            f" [job {job}]"
            if job is not None and record.name.startswith("brains_jobs.job.")
            else ""
        )
        return True


def setup_logging(level: str, fmt: str) -> None:
    """Send logs to standard error at `level`, as `fmt` (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.addFilter(_JobFields())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
