"""Commands that act on jobs by request: resubmit, complete, fail, move, the bulk
retry and cancel, attempts, and reports on tracking jobs. Each names its `--actor` in
the audit trail (default: `cli`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ..config import Settings
from ..models import JobStatus
from .options import DURATION, common, run_command, runtime

F = TypeVar("F", bound=Callable[..., Any])

_ACTOR = click.option("--actor", default="cli", show_default=True, help="Recorded as who acted.")


def _json_argument(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=name) from None


@click.command()
@common
@click.argument("job_id", type=int)
@_ACTOR
@run_command
async def resubmit(settings: Settings, job_id: int, actor: str) -> None:
    """Enqueue a new job with the input and options of JOB_ID; prints the new id."""
    async with runtime(settings) as rt:
        handle = await rt.resubmit(job_id, actor=actor)
        click.echo(handle.id)


@click.command()
@common
@click.argument("job_id", type=int)
@click.argument("output_json")
@_ACTOR
@run_command
async def complete(settings: Settings, job_id: int, output_json: str, actor: str) -> None:
    """Mark JOB_ID succeeded with OUTPUT_JSON (checked against its output model): a
    tracking job as its reporter would, any other job by force.
    """
    output = _json_argument(output_json, "OUTPUT_JSON")
    async with runtime(settings) as rt:
        job = await rt.get(job_id)
        if job.tracked and job.status is JobStatus.RUNNING:
            await rt.complete(job_id, output, actor=actor)
        else:
            await rt.force_complete(job_id, output, actor=actor)
        click.echo(f"job {job_id} succeeded")


@click.command()
@common
@click.argument("job_id", type=int)
@click.argument("reason")
@_ACTOR
@run_command
async def fail(settings: Settings, job_id: int, reason: str, actor: str) -> None:
    """Fail JOB_ID for good, with REASON: a tracking job as its reporter would, a
    waiting, queued or running job by force.
    """
    async with runtime(settings) as rt:
        job = await rt.get(job_id)
        if job.tracked and job.status is JobStatus.RUNNING:
            await rt.fail(job_id, reason, actor=actor)
        else:
            await rt.force_fail(job_id, reason, actor=actor)
        click.echo(f"job {job_id} failed")


@click.command()
@common
@click.argument("job_id", type=int)
@click.option("--queue", help="The queue to move it to.")
@click.option("--priority", type=int, help="Its new priority (higher runs first).")
@_ACTOR
@run_command
async def move(
    settings: Settings, job_id: int, queue: str | None, priority: int | None, actor: str
) -> None:
    """Move JOB_ID to another queue, or give it another priority."""
    async with runtime(settings) as rt:
        await rt.move(job_id, queue=queue, priority=priority, actor=actor)
        job = await rt.get(job_id)
        click.echo(f"job {job_id}: queue {job.queue}, priority {job.priority}")


def _bulk_options(fn: F) -> F:
    for option in reversed(
        [
            click.option("--status", type=click.Choice([s.value for s in JobStatus])),
            click.option("--type", "job_type"),
            click.option("--queue"),
            click.option("--tag"),
            click.option("--owner"),
            click.option(
                "--since",
                type=DURATION,
                help="Jobs created within this long (1h, 2d...); or give the bounds below.",
            ),
            click.option("--created-after", type=click.DateTime(), help="In UTC."),
            click.option("--created-before", type=click.DateTime(), help="In UTC."),
            click.option(
                "--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True
            ),
            click.option("--dry-run", is_flag=True, help="Only list what would be done."),
            _ACTOR,
        ]
    ):
        fn = option(fn)
    return fn


def _criteria(
    since: float | None, created_after: datetime | None, created_before: datetime | None
) -> dict[str, Any]:
    after = created_after.replace(tzinfo=UTC) if created_after else None
    if since is not None:
        since_time = datetime.fromtimestamp(datetime.now(UTC).timestamp() - since, UTC)
        after = max(after, since_time) if after else since_time
    return {
        "created_after": after,
        "created_before": created_before.replace(tzinfo=UTC) if created_before else None,
    }


async def _bulk(settings: Settings, action: str, options: dict[str, Any]) -> None:
    criteria = _criteria(
        options.pop("since"), options.pop("created_after"), options.pop("created_before")
    )
    options["type"] = options.pop("job_type")
    async with runtime(settings) as rt:
        act = rt.retry_many if action == "retry" else rt.cancel_many
        result = await act(**options, **criteria)
    verb = "would" if result.dry_run else "did"
    click.echo(
        f"{action}: {len(result.matched)} matched; {verb} change"
        f" {len(result.matched if result.dry_run else result.changed)};"
        f" {len(result.skipped)} skipped"
    )
    click.echo(json.dumps(result.model_dump()))


@click.command("retry-many")
@common
@_bulk_options
@run_command
async def retry_many(settings: Settings, **options: Any) -> None:
    """Retry the failed, cancelled or skipped jobs that match, newest first (a time
    bound is required: --since, --created-after or --created-before).
    """
    await _bulk(settings, "retry", options)


@click.command("cancel-many")
@common
@_bulk_options
@run_command
async def cancel_many(settings: Settings, **options: Any) -> None:
    """Cancel the waiting, queued or running jobs that match, newest first (a time
    bound is required: --since, --created-after or --created-before).
    """
    await _bulk(settings, "cancel", options)


@click.command()
@common
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@run_command
async def attempts(settings: Settings, job_id: int, as_json: bool) -> None:
    """Every attempt of JOB_ID: start, duration, worker, how it ended, its error."""
    async with runtime(settings, read_only=True) as rt:
        for attempt in await rt.attempts(job_id):
            if as_json:
                click.echo(attempt.model_dump_json())
                continue
            took = "running" if attempt.duration is None else f"{attempt.duration:.3f}s"
            ended = attempt.status.value if attempt.status else "-"
            error = f"  {attempt.error.type}: {attempt.error.message}" if attempt.error else ""
            click.echo(
                f"#{attempt.number} {attempt.started_at:%Y-%m-%d %H:%M:%S} {took:>9}"
                f" {ended:<10} {attempt.worker_id or '-'}{error}"
            )


@click.command()
@common
@click.argument("job_id", type=int)
@click.option("--progress", type=click.FloatRange(0.0, 1.0), help="A fraction from 0 to 1.")
@click.option("--message")
@click.option("--usage", "usage_json", help='Usage to add, as JSON: {"rows": 100}.')
@_ACTOR
@run_command
async def report(
    settings: Settings,
    job_id: int,
    progress: float | None,
    message: str | None,
    usage_json: str | None,
    actor: str,
) -> None:
    """Report on tracking job JOB_ID (progress, message, usage); renews its ttl."""
    usage = None if usage_json is None else _json_argument(usage_json, "--usage")
    async with runtime(settings) as rt:
        await rt.report(job_id, progress=progress, message=message, usage=usage, actor=actor)


COMMANDS = [resubmit, complete, fail, move, retry_many, cancel_many, attempts, report]
