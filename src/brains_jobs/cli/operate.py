"""Commands for operators: worker, workers, health, stats, prune, migrate, plugins."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from ..config import Settings
from ..exceptions import BrainsJobsError
from ..models import JobStatus
from ..plugins.host import PluginHost
from ..registry import Registry
from ..runtime import tune_gc_for_worker
from ..store.records import StoreOptions
from .options import DURATION, common, run_command, runtime, setting, settings_from


@click.command()
@common
@setting("concurrency", "-c", "--concurrency", type=click.IntRange(min=1))
@setting("queues", "-q", "--queues")
@setting("burst", "--burst", is_flag=True, flag_value=True)
@setting("shutdown_timeout", "--shutdown-timeout", type=DURATION)
@setting("lease", "--lease", type=DURATION)
@setting("prefetch", "--prefetch", type=click.IntRange(min=0))
@setting("worker_id", "--worker-id")
@setting("wait_for_db", "--wait-for-db", type=DURATION)
@setting("flush_timeout", "--flush-timeout", type=DURATION)
@setting("max_prefetch", "--max-prefetch", type=click.IntRange(min=1))
@setting("stall_threshold", "--stall-threshold", type=DURATION)
@setting("leader_lease", "--leader-lease", type=DURATION)
@setting("rescue_interval", "--rescue-interval", type=DURATION)
@setting("prune_interval", "--prune-interval", type=DURATION)
@setting("prune_batch", "--prune-batch", type=click.IntRange(min=1))
@setting("retention_succeeded", "--retention-succeeded")
@setting("retention_failed", "--retention-failed")
@setting("retention_cancelled", "--retention-cancelled")
@setting("metrics_port", "--metrics-port", type=click.IntRange(1, 65535))
@setting("metrics_interval", "--metrics-interval", type=DURATION)
@setting("tracing", "--tracing", is_flag=True, flag_value=True)
@click.option("--max-jobs", type=click.IntRange(min=1), help="Stop after this many jobs.")
@click.option("--max-seconds", type=DURATION, help="Stop claiming after this long.")
@run_command
async def worker(settings: Settings, max_jobs: int | None, max_seconds: float | None) -> None:
    """Run jobs until stopped (SIGTERM/SIGINT: finish running jobs, then exit; a second
    signal cancels them and gives them back to the queue).
    """
    async with runtime(settings, wait_for_db=settings.wait_for_db) as rt:
        tune_gc_for_worker()  # this process only runs the worker from now on
        await rt.run_worker(
            handle_signals=True,
            max_jobs=max_jobs,
            max_seconds=max_seconds,
        )


@click.command()
@common
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@run_command
async def workers(settings: Settings, as_json: bool) -> None:
    """List the live workers: id, host, pid, queues, concurrency, jobs running."""
    async with runtime(settings, read_only=True) as rt:
        found = await rt.workers()
        now = datetime.now(UTC)
        for w in found:
            if as_json:
                click.echo(w.model_dump_json())
                continue
            seen = (now - w.heartbeat_at).total_seconds()
            click.echo(
                f"{w.id}  host={w.host} pid={w.pid} queues={','.join(w.queues) or 'all'}"
                f" concurrency={w.concurrency} running={w.running}"
                f" started={w.started_at:%Y-%m-%d %H:%M:%S} seen={seen:.0f}s ago"
            )
        if not found and not as_json:
            click.echo("no live workers")


@click.command()
@common
@click.option("--json", "as_json", is_flag=True)
@run_command
async def health(settings: Settings, as_json: bool) -> None:
    """Exit 0 when the database answers and its schema is current (a container health
    check); print the live workers, the leader and the oldest queued job.
    """
    async with runtime(settings, read_only=True) as rt:
        report = await rt.health()
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(f"database: {report.database}")
        click.echo(f"schema: {'current' if report.schema_current else 'NOT current'}")
        click.echo(f"workers: {len(report.workers)} live")
        click.echo(f"leader: {report.leader or 'none'}")
        oldest = report.oldest_queued_at
        click.echo(f"oldest queued job: {oldest.isoformat() if oldest else 'none'}")
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        sys.exit(1)


@click.command()
@common
@click.option("--json", "as_json", is_flag=True)
@run_command
async def stats(settings: Settings, as_json: bool) -> None:
    """Job counts by type and status, and the types no live worker knows."""
    async with runtime(settings, read_only=True) as rt:
        result = await rt.stats()
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    columns = list(JobStatus)
    click.echo(f"{'type':<28}" + "".join(f"{s.value:>11}" for s in columns))
    for job_type, counts in sorted(result.by_type.items()):
        click.echo(f"{job_type:<28}" + "".join(f"{counts.get(s, 0):>11}" for s in columns))
    for job_type in result.unserved:
        click.echo(
            f"warning: queued {job_type!r} jobs wait; no live worker knows that type", err=True
        )


@click.command()
@common
@click.option(
    "--older-than",
    type=DURATION,
    required=True,
    help="Time since the job finished (7d, 12h, or seconds).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in JobStatus if s.is_final]),
    help="Only jobs in this final status; repeatable (default: every final status).",
)
@run_command
async def prune(settings: Settings, older_than: float, statuses: tuple[str, ...]) -> None:
    """Delete finished jobs, their events and their artifacts (once; the leader also
    prunes by the retention settings while workers run).
    """
    async with runtime(settings) as rt:
        chosen = statuses or tuple(s.value for s in JobStatus if s.is_final)
        removed = await rt.prune(older_than, statuses=chosen)
        click.echo(f"pruned {len(removed)} job(s)")


@click.command()
@common
@click.option("--sql", "print_sql", is_flag=True, help="Print the SQL instead of applying it.")
@run_command
async def migrate(settings: Settings, print_sql: bool) -> None:
    """Create or upgrade the schema (or print its SQL for a DBA)."""
    host = PluginHost(
        settings.plugin_modules, allow=settings.plugins_allow, deny=settings.plugins_deny
    )
    store = host.make_store(StoreOptions(settings.database_url, settings.statement_timeout))
    if print_sql:
        click.echo(store.migration_sql())
        return
    await store.open(create_schema=False)
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    click.echo("applied: " + ", ".join(applied) if applied else "the schema is up to date")


@click.command()
@common
def plugins(**common: object) -> None:
    """List installed plugins, their versions and job types, and any that failed to load."""
    try:
        settings = settings_from(click.get_current_context(), **common)
        host = PluginHost(
            settings.plugin_modules, allow=settings.plugins_allow, deny=settings.plugins_deny
        )
        host.register_jobs(Registry())
    except BrainsJobsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for info in host.plugins():
        version = f" {info.version}" if info.version else ""
        dist = f" ({info.distribution}{version})" if info.distribution else ""
        click.echo(f"{info.name}{dist}")
        for job_type in info.job_types:
            click.echo(f"    {job_type}")
    for failure in host.failures:
        click.echo(f"{failure.name} ({failure.distribution}): FAILED to load: {failure.error}")


COMMANDS = [worker, workers, health, stats, prune, migrate, plugins]
