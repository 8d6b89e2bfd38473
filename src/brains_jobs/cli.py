"""The `brains-jobs` command line.

Every option can also be set with the `BRAINS_JOBS_*` environment variable shown in
`--help`. Exit codes: 0 success, 1 a job or store error, 2 bad usage or bad input.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
import click

from . import demo as demo_plugin
from ._display import ProgressView, format_event
from .artifacts import DirectoryArtifactStore
from .exceptions import (
    BrainsJobsError,
    ConfigurationError,
    InvalidJobInput,
    JobFailed,
    PluginError,
    UnknownJobType,
)
from .handle import JobHandle
from .models import EventKind, Job, JobStatus
from .plugins.host import PluginHost
from .registry import Registry
from .runtime import DEFAULT_DATABASE_URL, Runtime

P = ParamSpec("P")
T = TypeVar("T")

_db_option = click.option(
    "--db", "db", envvar="BRAINS_JOBS_DATABASE_URL", default=DEFAULT_DATABASE_URL,
    show_default=True, show_envvar=True, help="Database URL (sqlite+aiosqlite:///file or postgresql+asyncpg://...).",
)
_plugin_option = click.option(
    "--plugin", "plugins", envvar="BRAINS_JOBS_PLUGIN", multiple=True, show_envvar=True,
    help="Extra plugin module to load (package.module[:attr]); repeatable.",
)
_log_option = click.option(
    "-l", "--log-level", envvar="BRAINS_JOBS_LOG_LEVEL", default="info", show_default=True,
    show_envvar=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)


def _common(fn: Callable[P, T]) -> Callable[P, T]:
    return _db_option(_plugin_option(_log_option(fn)))


def _run(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Run an async command; turn library errors into messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        level = str(kwargs.get("log_level") or "warning").upper()
        logging.basicConfig(
            level=getattr(logging, level), stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        try:
            return anyio.run(functools.partial(fn, *args, **kwargs))
        except (InvalidJobInput, UnknownJobType, ConfigurationError, PluginError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except BrainsJobsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except TimeoutError:
            click.echo("error: timed out waiting for the job", err=True)
            sys.exit(1)

    return wrapper


def _runtime(db: str, plugins: tuple[str, ...], **options: Any) -> Runtime:
    return Runtime(db, plugins=plugins, **options)


def _job_json(job: Job) -> str:
    return job.model_dump_json(indent=2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brains-jobs")
def cli() -> None:
    """brains-jobs: typed background jobs on SQLite or PostgreSQL."""


@cli.command()
@_common
@click.option("-c", "--concurrency", envvar="BRAINS_JOBS_CONCURRENCY", default=10,
              show_default=True, show_envvar=True, type=click.IntRange(min=1),
              help="Jobs run at once.")
@click.option("-q", "--queues", envvar="BRAINS_JOBS_QUEUES", default="", show_envvar=True,
              help="Comma-separated queues to take jobs from (default: all).")
@click.option("--burst", envvar="BRAINS_JOBS_BURST", is_flag=True, show_envvar=True,
              help="Exit once no job is ready or running (after retrying its own failures).")
@click.option("--shutdown-timeout", envvar="BRAINS_JOBS_SHUTDOWN_TIMEOUT", default=30.0,
              show_default=True, show_envvar=True, type=click.FloatRange(min=0),
              help="Seconds running jobs get to finish after SIGTERM/SIGINT.")
@_run
async def worker(
    db: str, plugins: tuple[str, ...], log_level: str, concurrency: int, queues: str,
    burst: bool, shutdown_timeout: float,
) -> None:
    """Run jobs until stopped (SIGTERM/SIGINT: finish running jobs, then exit)."""
    queue_list = [q.strip() for q in queues.split(",") if q.strip()] or None
    async with _runtime(db, plugins) as rt:
        await rt.run_worker(
            concurrency, queues=queue_list, burst=burst,
            shutdown_timeout=shutdown_timeout, handle_signals=True,
        )


@cli.command()
@_common
@click.argument("job_type")
@click.argument("input_json")
@click.option("--queue", help="Queue (default: the job type's).")
@click.option("--priority", type=int, help="Higher runs first.")
@click.option("--delay", type=float, help="Seconds to wait before the job may run.")
@click.option("--unique-key", help="Enqueue only if no job holds this key.")
@click.option("--tag", "tags", multiple=True, help="Tag; repeatable.")
@click.option("--owner", help="Who the job belongs to.")
@click.option("--max-attempts", type=click.IntRange(min=1))
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", type=float, default=None, help="With --wait: seconds to wait.")
@_run
async def enqueue(
    db: str, plugins: tuple[str, ...], log_level: str, job_type: str, input_json: str,
    queue: str | None, priority: int | None, delay: float | None, unique_key: str | None,
    tags: tuple[str, ...], owner: str | None, max_attempts: int | None, wait: bool,
    timeout: float | None,
) -> None:
    """Enqueue a job of JOB_TYPE with INPUT_JSON; prints the job id."""
    try:
        data = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="INPUT_JSON") from None
    async with _runtime(db, plugins) as rt:
        handle = await rt.enqueue(
            job_type, data, queue=queue, priority=priority, delay=delay, unique_key=unique_key,
            tags=tags, owner=owner, max_attempts=max_attempts,
        )
        click.echo(handle.id if handle.created else f"{handle.id} (existing job with that key)")
        if wait:
            result = await handle.result(timeout=timeout)
            click.echo(
                result.model_dump_json(indent=2)
                if hasattr(result, "model_dump_json")
                else json.dumps(result)
            )


@cli.command()
@_common
@click.argument("job_id", type=int)
@click.option("--events/--no-events", default=True, help="Also print the job's event history.")
@_run
async def show(
    db: str, plugins: tuple[str, ...], log_level: str, job_id: int, events: bool
) -> None:
    """Print a job's record (JSON) and its history."""
    async with _runtime(db, plugins) as rt:
        click.echo(_job_json(await rt.get(job_id)))
        if events:
            for event in await rt.store.events_after(0, job_id=job_id, limit=10_000):
                click.echo(format_event(event))


@cli.command("list")
@_common
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
@_run
async def list_(
    db: str, plugins: tuple[str, ...], log_level: str, status: str | None, job_type: str | None,
    queue: str | None, tag: str | None, owner: str | None, created_after: datetime | None,
    created_before: datetime | None, limit: int, cursor: str | None, as_json: bool,
) -> None:
    """List jobs, newest first."""
    async with _runtime(db, plugins) as rt:
        page = await rt.list(
            status=status, type=job_type, queue=queue, tag=tag, owner=owner,
            created_after=created_after.replace(tzinfo=UTC) if created_after else None,
            created_before=created_before.replace(tzinfo=UTC) if created_before else None,
            limit=limit, cursor=cursor,
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


@cli.command()
@_common
@click.argument("job_id", type=int)
@_run
async def cancel(db: str, plugins: tuple[str, ...], log_level: str, job_id: int) -> None:
    """Cancel a queued job, or ask the worker of a running one to cancel it."""
    async with _runtime(db, plugins) as rt:
        status = await rt.cancel(job_id)
        click.echo("cancelled" if status is JobStatus.CANCELLED else "cancellation requested")


@cli.command()
@_common
@click.option("--older-than", type=float, required=True,
              help="Seconds since the job finished (e.g. 604800 for a week).")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice([s.value for s in JobStatus if s.is_final]),
              help="Only jobs in this final status; repeatable (default: every final status).")
@_run
async def prune(
    db: str, plugins: tuple[str, ...], log_level: str, older_than: float,
    statuses: tuple[str, ...],
) -> None:
    """Delete finished jobs, their events and their artifacts."""
    async with _runtime(db, plugins) as rt:
        chosen = statuses or tuple(s.value for s in JobStatus if s.is_final)
        removed = await rt.prune(older_than, statuses=chosen)
        click.echo(f"pruned {len(removed)} job(s)")


@cli.command()
@_common
@click.argument("job_id", type=int)
@_run
async def retry(db: str, plugins: tuple[str, ...], log_level: str, job_id: int) -> None:
    """Queue a failed or cancelled job again."""
    async with _runtime(db, plugins) as rt:
        await rt.retry(job_id)
        click.echo(f"job {job_id} queued again")


@cli.command()
@_common
@click.option("--json", "as_json", is_flag=True)
@_run
async def stats(db: str, plugins: tuple[str, ...], log_level: str, as_json: bool) -> None:
    """Job counts by type and status."""
    async with _runtime(db, plugins) as rt:
        result = await rt.stats()
        if as_json:
            click.echo(result.model_dump_json(indent=2))
            return
        columns = list(JobStatus)
        click.echo(f"{'type':<28}" + "".join(f"{s.value:>11}" for s in columns))
        for job_type, counts in sorted(result.by_type.items()):
            click.echo(f"{job_type:<28}" + "".join(f"{counts.get(s, 0):>11}" for s in columns))


@cli.command()
@_plugin_option
@_log_option
def plugins(plugins: tuple[str, ...], log_level: str) -> None:
    """List installed plugins, their versions and job types, and any that failed to load."""
    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr)
    try:
        host = PluginHost(plugins)
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


@cli.command()
@_common
@click.argument("job_id", type=int, required=False)
@click.option("--type", "types", multiple=True, help="Only jobs of this type; repeatable.")
@click.option("--history/--no-history", default=True,
              help="With JOB_ID: replay its past events first.")
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
@_run
async def watch(
    db: str, plugins: tuple[str, ...], log_level: str, job_id: int | None,
    types: tuple[str, ...], history: bool, plain: bool,
) -> None:
    """Follow progress live: one job (until it finishes) or every job (until Ctrl-C)."""
    async with _runtime(db, plugins, load_entrypoints=True) as rt:
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


@cli.command()
@_common
@click.option("--sql", "print_sql", is_flag=True, help="Print the SQL instead of applying it.")
@_run
async def migrate(db: str, plugins: tuple[str, ...], log_level: str, print_sql: bool) -> None:
    """Create or upgrade the schema (or print its SQL for a DBA)."""
    rt = _runtime(db, plugins, create_schema=False)
    store = rt.host.make_store(rt.url)
    if print_sql:
        click.echo(store.migration_sql())
        return
    await store.open(create_schema=False)
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    click.echo("applied: " + ", ".join(applied) if applied else "the schema is up to date")


DEMO_ARTIFACTS = "brains_jobs_artifacts/demo"


@cli.command("demo")
@click.option("--db", "db", envvar="BRAINS_JOBS_DEMO_DATABASE_URL",
              default="sqlite+aiosqlite:///brains_jobs_demo.db", show_default=True)
@click.option("--artifacts", envvar="BRAINS_JOBS_DEMO_ARTIFACTS", default=DEMO_ARTIFACTS,
              show_default=True, show_envvar=True,
              help="Where the demo's artifacts (the report PDF) go; the default is emptied first.")
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
@_log_option
@_run
async def demo(db: str, artifacts: str, plain: bool, log_level: str) -> None:
    """Run demo jobs with live progress: two stand-alone types and, with the web-scraping,
    image-generation and pdf-export plugins installed, a report workflow (scrape a page
    served here, draw a cover, export a PDF), each step enqueued by the one before.
    """
    logging.getLogger("brains_jobs").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    if db.startswith("sqlite") and ":memory:" not in db:
        await anyio.Path(db.split("///", 1)[1]).unlink(missing_ok=True)
    if artifacts == DEMO_ARTIFACTS:
        # The job ids start again at 1 in the fresh database: drop the last run's files.
        await anyio.to_thread.run_sync(
            functools.partial(shutil.rmtree, DEMO_ARTIFACTS, ignore_errors=True)
        )
    async with (
        Runtime(db, plugins=[demo_plugin], artifacts=artifacts) as rt,
        demo_plugin.fixture_site() as site,
    ):
        roots: list[JobHandle[Any]] = []
        missing = demo_plugin.missing_report_plugins(rt.registry)
        if missing:
            click.echo("The report workflow needs these plugins: pip install " + " ".join(missing))
        else:
            roots.append(await rt.enqueue(demo_plugin.report_scrape, {"url": f"{site}/article"}))
        roots += [
            await rt.enqueue(demo_plugin.checksum, {"seed": f"demo-{i}", "chunks": 6 + i})
            for i in range(3)
        ]
        roots.append(await rt.enqueue(demo_plugin.wordcount, {"text": demo_plugin.TEXT}))
        roots.append(
            await rt.enqueue(demo_plugin.wordcount, {"text": demo_plugin.TEXT, "fail_first": True})
        )
        await _follow_all(rt, {h.id for h in roots}, live=False if plain else None)
        jobs = sorted((await rt.list(limit=1000)).jobs, key=lambda j: j.id)
        click.echo("\nResults:")
        for job in jobs:
            parent = f" (enqueued by #{job.parent_id})" if job.parent_id else ""
            click.echo(
                f"  #{job.id} {job.type} {job.status.value}"
                f" after {job.attempts} attempt(s){parent}:"
            )
            error = job.last_error
            outcome = (
                job.output
                if job.status is JobStatus.SUCCEEDED or error is None
                else f"{error.type}: {error.message}"
            )
            click.echo(f"      {json.dumps(_brief(outcome))}")
        if not missing:
            _print_report(rt, jobs)


def _brief(data: Any) -> Any:
    """`data` with each artifact reference shortened to its key, for one-line results."""
    if isinstance(data, dict):
        if {"key", "sha256", "content_type"} <= data.keys():
            return f"artifact {data['key']}"
        return {k: _brief(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_brief(v) for v in data]
    return data


async def _follow_all(rt: Runtime, roots: set[int], *, live: bool | None) -> None:
    """Show every job's events, with a worker running, until the `roots` and every job
    they enqueued are final. A follow-up's `queued` event comes before its parent's final
    one, so when every job seen so far is final, no chain can still grow. After missed
    events, the store says which jobs exist and which are final.
    """
    with ProgressView(live=live) as view:
        async with anyio.create_task_group() as tg, rt.events(after=0) as events:
            tg.start_soon(functools.partial(rt.run_worker, 4, burst=True))
            seen: set[int] = set()
            finished: set[int] = set()
            async for event in events:
                view.show(event)
                if event.kind is EventKind.DROPPED:
                    for job in (await rt.list(limit=10_000)).jobs:
                        seen.add(job.id)
                        if job.status.is_final:
                            finished.add(job.id)
                else:
                    seen.add(event.job_id)
                    if event.status is not None and event.status.is_final:
                        finished.add(event.job_id)
                if roots <= finished and seen <= finished:
                    break


def _print_report(rt: Runtime, jobs: list[Job]) -> None:
    """Say where the report PDF is, or why there is none."""
    report = next((j for j in jobs if j.type == demo_plugin.report_pdf.name), None)
    if report is None or report.status is not JobStatus.SUCCEEDED:
        failed = next((j for j in jobs if j.type.startswith("demo.report.") and j.errors), None)
        error = failed.last_error if failed else None
        raise JobFailed(
            failed.id if failed else 0,
            f"{error.type}: {error.message}" if error else "the report was not made",
            failed.attempts if failed else 0,
        )
    result = demo_plugin.report_pdf.parse_output(report.output)
    where = (
        (rt.artifacts.root / result.pdf.key).resolve()
        if isinstance(rt.artifacts, DirectoryArtifactStore)
        else f"artifact {result.pdf.key}"
    )
    click.echo(f"\nReport PDF ({result.pages} page(s), {result.pdf.size} bytes): {where}")


def main() -> None:
    """Entry point of the `brains-jobs` script, with plugin commands added."""
    # `--plugin module` finds modules of the current directory, as `python -m` does.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        PluginHost().add_commands(cli)
    except BrainsJobsError as exc:
        click.echo(f"warning: plugin commands unavailable: {exc}", err=True)
    cli()
