"""Live progress on a terminal (rich), or one plain line per event elsewhere."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..models import EventKind, JobEvent, JobStatus

if TYPE_CHECKING:
    from types import TracebackType

_STYLE = {
    JobStatus.WAITING: "dim",
    JobStatus.QUEUED: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
    JobStatus.SKIPPED: "magenta",
}


def format_event(event: JobEvent) -> str:
    """One line for `event`, as `brains-jobs watch` prints it when not on a terminal;
    who acted, when someone did (`by ann`).
    """
    when = event.at.strftime("%H:%M:%S.%f")[:-3]
    head = f"{when} #{event.job_id} {event.job_type}"
    by = f" by {event.actor}" if event.actor else ""
    if event.kind is EventKind.STATUS and event.status is not None:
        tail = f" ({event.message})" if event.message else ""
        return f"{head} {event.status.value} attempt={event.attempt}{tail}{by}"
    if event.kind is EventKind.PROGRESS:
        pct = f"{(event.progress or 0.0) * 100:5.1f}%"
        return f"{head} progress {pct} {event.message or ''}".rstrip() + by
    if event.kind is EventKind.LOG:
        level = (event.data or {}).get("level", "info")
        return f"{head} log {level}: {event.message}"
    if event.kind is EventKind.ACTION:
        return f"{head} action: {event.message}{by}"
    return f"{when} {event.kind.value}: {event.message}"


@dataclass
class _Row:
    task: TaskID
    status: JobStatus = JobStatus.QUEUED


class ProgressView:
    """Shows jobs as progress bars (terminal) or event lines (pipes, files, CI logs)."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream)
        self.live = self.console.is_terminal if live is None else live
        self._rows: dict[int, _Row] = {}
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[message]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )

    def __enter__(self) -> ProgressView:
        if self.live:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live:
            self._progress.stop()

    def show(self, event: JobEvent) -> None:
        """Update the view with one event."""
        if not self.live:
            print(format_event(event), file=self.stream, flush=True)
            return
        if event.kind is EventKind.DROPPED:
            self.console.print(f"[yellow]{event.message}[/]")
            return
        row = self._rows.get(event.job_id)
        if row is None:
            task = self._progress.add_task(
                f"#{event.job_id} {event.job_type}", total=1.0, status="", message=""
            )
            row = self._rows[event.job_id] = _Row(task)
        if event.kind is EventKind.STATUS and event.status is not None:
            row.status = event.status
            style = _STYLE[event.status]
            fields: dict[str, object] = {"status": f"[{style}]{event.status.value}[/]"}
            if event.status is JobStatus.SUCCEEDED:
                fields["completed"] = 1.0
            if event.message:
                fields["message"] = event.message
            self._progress.update(row.task, **fields)  # type: ignore[arg-type]
        elif event.kind is EventKind.PROGRESS:
            self._progress.update(
                row.task, completed=event.progress or 0.0, message=event.message or ""
            )
        elif event.kind is EventKind.LOG:
            self._progress.console.print(f"#{event.job_id} {event.message}")
