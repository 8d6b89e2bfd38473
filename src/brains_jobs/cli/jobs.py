"""Commands about jobs: enqueue, show, list, cancel, retry, watch."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from ..config import Settings
from ..models import EventKind, JobStatus
from .display import ProgressView, format_event
from .options import DURATION, common, run_command, runtime

if TYPE_CHECKING:
    from ..models import Job


def _job_json(job: Job) -> str:
    return job.model_dump_json(indent=2)


@click.command()
@common
@click.argument("job_type")
@click.argument("input_json")
@click.option("--queue", help="Queue (default: the job type's).")
@click.option("--priority", type=int, help="Higher runs first.")
@click.option(
    "--delay", type=DURATION, help="How long to wait before the job may run (30s, 5m...)."
)
@click.option("--unique-key", help="Enqueue only if no job holds this key.")
@click.option("--tag", "tags", multiple=True, help="Tag; repeatable.")
@click.option("--owner", help="Who the job belongs to.")
@click.option("--max-attempts", type=int)
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", type=DURATION, default=None, help="With --wait: how long to wait.")
@run_command
async def enqueue(
    settings: Settings,
    job_type: str,
    input_json: str,
    queue: str | None,
    priority: int | None,
    delay: float | None,
    unique_key: str | None,
    tags: tuple[str, ...],
    owner: str | None,
    max_attempts: int | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Enqueue a job of JOB_TYPE with INPUT_JSON; prints the job id."""
    try:
        data = json.loads(input_json)
    except (ValueError, RecursionError) as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="INPUT_JSON") from None
    async with runtime(settings) as rt:
        options = {
            "queue": queue,
            "priority": priority,
            "delay": delay,
            "unique_key": unique_key,
            "tags": tags or None,
            "owner": owner,
            "max_attempts": max_attempts,
        }
        handle = await rt.enqueue(
            job_type, data, **{k: v for k, v in options.items() if v is not None}
        )
        click.echo(handle.id if handle.created else f"{handle.id} (existing job with that key)")
        if not wait:
            return
        workers = await rt.workers()
        if not any(job_type in w.types for w in workers):
            live = f"{len(workers)} live worker(s)" if workers else "no live worker"
            click.echo(
                f"note: {live}, and none knows job type {job_type!r}; the job waits until a"
                " worker with the plugin that provides it starts",
                err=True,
            )
        try:
            result = await handle.result(timeout=timeout)
        except TimeoutError:
            raise TimeoutError("timed out waiting for the job") from None
        click.echo(
            result.model_dump_json(indent=2)
            if hasattr(result, "model_dump_json")
            else json.dumps(result)
        )


@click.command()
@common
@click.argument("job_id", type=int)
@click.option("--events/--no-events", default=True, help="Also print the job's event history.")
@run_command
async def show(settings: Settings, job_id: int, events: bool) -> None:
    """Print a job's record (JSON) and its history."""
    async with runtime(settings, read_only=True) as rt:
        click.echo(_job_json(await rt.get(job_id)))
        if events:
            for event in await rt.store.events_after(0, job_id=job_id, limit=10_000):
                click.echo(format_event(event))


@click.command("list")
@common
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--type", "job_type")
@click.option("--queue")
@click.option("--tag")
@click.option("--owner")
@click.option("--created-after", type=click.DateTime())
@click.option("--created-before", type=click.DateTime())
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--cursor", help="next_cursor printed by the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@run_command
async def list_(
    settings: Settings,
    status: str | None,
    job_type: str | None,
    queue: str | None,
    tag: str | None,
    owner: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List jobs, newest first."""
    async with runtime(settings, read_only=True) as rt:
        page = await rt.list(
            status=status,
            type=job_type,
            queue=queue,
            tag=tag,
            owner=owner,
            created_after=created_after.replace(tzinfo=UTC) if created_after else None,
            created_before=created_before.replace(tzinfo=UTC) if created_before else None,
            limit=limit,
            cursor=cursor,
        )
        for job in page.jobs:
            if as_json:
                click.echo(job.model_dump_json())
            else:
                progress = "" if job.progress is None else f" {job.progress * 100:.0f}%"
                click.echo(
                    f"{job.id:>8} {job.type:<24} {job.status.value:<10} "
                    f"attempts={job.attempts}/{job.max_attempts}{progress}"
                )
        if page.next_cursor:
            click.echo(f"next_cursor: {page.next_cursor}", err=True)


@click.command()
@common
@click.argument("job_id", type=int)
@click.option("--actor", help="Who cancels (recorded in the audit trail).")
@run_command
async def cancel(settings: Settings, job_id: int, actor: str | None) -> None:
    """Cancel a queued job, or ask the worker of a running one to cancel it."""
    async with runtime(settings) as rt:
        status = await rt.cancel(job_id, actor=actor or "cli")
        click.echo("cancelled" if status is JobStatus.CANCELLED else "cancellation requested")


@click.command()
@common
@click.argument("job_id", type=int)
@click.option("--actor", help="Who retries (recorded in the audit trail).")
@run_command
async def retry(settings: Settings, job_id: int, actor: str | None) -> None:
    """Queue a failed, cancelled or skipped job again, with a fresh allowance of attempts."""
    async with runtime(settings) as rt:
        await rt.retry(job_id, actor=actor or "cli")
        job = await rt.get(job_id)
        click.echo(f"job {job_id} queued again ({job.max_attempts - job.attempts} more attempt(s))")


@click.command()
@common
@click.argument("job_id", type=int, required=False)
@click.option("--type", "types", multiple=True, help="Only jobs of this type; repeatable.")
@click.option(
    "--history/--no-history", default=True, help="With JOB_ID: replay its past events first."
)
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
@run_command
async def watch(
    settings: Settings, job_id: int | None, types: tuple[str, ...], history: bool, plain: bool
) -> None:
    """Follow progress live: one job (until it finishes) or every job (until Ctrl-C)."""
    async with runtime(settings, read_only=True) as rt:
        if job_id is not None:
            await rt.get(job_id)
        after = 0 if (job_id is not None and history) else None
        with ProgressView(live=False if plain else None) as view:
            async with rt.events(job_id=job_id, types=types or None, after=after) as events:
                async for event in events:
                    view.show(event)
                    if (
                        job_id is not None
                        and event.kind is EventKind.STATUS
                        and event.status is not None
                        and event.status.is_final
                    ):
                        break


COMMANDS = [enqueue, show, list_, cancel, retry, watch]
