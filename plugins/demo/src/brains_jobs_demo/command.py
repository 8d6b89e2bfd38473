"""`brains-jobs demo`: enqueue the demo's jobs, run a worker in this process, show the
progress live, then the results and where the report PDF is.

Exit codes: 0 success, 1 a job or store error, 2 bad usage or configuration.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
from typing import Any

import anyio
import anyio.to_thread
import brains_jobs as bj
import click
from brains_jobs.artifacts import DirectoryArtifactStore
from brains_jobs.cli import ProgressView

from .jobs import (
    ALL_JOBS,
    TEXT,
    checksum,
    missing_report_plugins,
    report_pdf,
    report_scrape,
    wordcount,
)
from .site import fixture_site

__all__ = ["DEMO_ARTIFACTS", "DEMO_DATABASE", "demo"]

DEMO_DATABASE = "sqlite+aiosqlite:///brains_jobs_demo.db"
DEMO_ARTIFACTS = "brains_jobs_artifacts/demo"

_USAGE_ERRORS = (
    bj.ConfigurationError,
    bj.PluginError,
    bj.InvalidJobInput,
    bj.InvalidJobOption,
    bj.UnknownJobType,
)


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db",
    envvar="BRAINS_JOBS_DEMO_DATABASE_URL",
    default=DEMO_DATABASE,
    show_default=True,
    show_envvar=True,
    help="The demo's database; a SQLite file is deleted first.",
)
@click.option(
    "--artifacts",
    envvar="BRAINS_JOBS_DEMO_ARTIFACTS",
    default=DEMO_ARTIFACTS,
    show_default=True,
    show_envvar=True,
    help="Where the demo's artifacts (the report PDF) go; the default is emptied first.",
)
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
@click.option(
    "-l",
    "--log-level",
    envvar="BRAINS_JOBS_LOG_LEVEL",
    default="info",
    show_default=True,
    show_envvar=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
def demo(db: str, artifacts: str, plain: bool, log_level: str) -> None:
    """Run demo jobs with live progress: two stand-alone types and, with the web-scraping,
    image-generation and pdf-export plugins installed, a report workflow (scrape a page
    served here, draw a cover, export a PDF), each step enqueued by the one before.
    """
    level = getattr(logging, log_level.upper())
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level > logging.DEBUG:
        # The progress view shows the jobs' own log lines; the runtime's would interleave.
        logging.getLogger("brains_jobs").setLevel(logging.ERROR)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    try:
        anyio.run(functools.partial(run_demo, db, artifacts, live=False if plain else None))
    except (bj.BrainsJobsError, BaseExceptionGroup) as exc:
        error = _library_error(exc)
        if error is None:
            raise
        click.echo(f"error: {error}", err=True)
        sys.exit(2 if isinstance(error, _USAGE_ERRORS) else 1)


def _library_error(exc: BaseException) -> bj.BrainsJobsError | None:
    """The library error `exc` is, or that task groups wrapped alone; None otherwise."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, bj.BrainsJobsError) else None


async def run_demo(db: str, artifacts: str, *, live: bool | None = None) -> None:
    """The `demo` command without its option parsing: start from an empty database,
    enqueue the demo's jobs, run them with progress shown (`live`: bars; False: lines;
    None: bars on a terminal), print the results and the report PDF's path.
    """
    await _forget_last_run(db, artifacts)
    async with bj.Runtime(db, jobs=ALL_JOBS, artifacts=artifacts) as rt:
        async with fixture_site() as site:
            missing = missing_report_plugins(rt.registry)
            if missing:
                click.echo(
                    "The report workflow needs these plugins: pip install " + " ".join(missing)
                )
            else:
                await rt.enqueue(report_scrape, {"url": f"{site}/article"})
            for i in range(3):
                await rt.enqueue(checksum, {"seed": f"demo-{i}", "chunks": 6 + i})
            await rt.enqueue(wordcount, {"text": TEXT})
            await rt.enqueue(wordcount, {"text": TEXT, "fail_first": True})
            await _run_and_show(rt, live=live)
        jobs = sorted((await rt.list(limit=10_000)).jobs, key=lambda j: j.id)
        _print_results(jobs)
        if not missing:
            _print_report(rt, jobs)


async def _forget_last_run(db: str, artifacts: str) -> None:
    """Delete the demo's SQLite file and, at the default place, its artifacts: the job
    ids start again at 1.
    """
    if db.startswith("sqlite") and "///" in db and ":memory:" not in db:
        path = db.split("///", 1)[1].split("?", 1)[0]
        for suffix in ("", "-wal", "-shm", "-journal"):
            await anyio.Path(path + suffix).unlink(missing_ok=True)
    if artifacts == DEMO_ARTIFACTS:
        await anyio.to_thread.run_sync(
            functools.partial(shutil.rmtree, DEMO_ARTIFACTS, ignore_errors=True)
        )


async def _run_and_show(rt: bj.Runtime, *, live: bool | None) -> None:
    """Run a worker until no job is ready or running, showing every job's events, then
    wait until the final status of each finished job has been shown.

    Follow-up jobs are written with their parent's result, so once the burst worker
    stops, every chain has run to its end.
    """
    finished: set[int] = set()
    changed = anyio.Condition()
    with ProgressView(live=live) as view:
        async with rt.events(after=0) as events, anyio.create_task_group() as tg:

            async def show() -> None:
                async for event in events:
                    view.show(event)
                    if event.kind is bj.EventKind.DROPPED:
                        page = await rt.list(limit=10_000)
                        finished.update(j.id for j in page.jobs if j.status.is_final)
                    elif event.status is not None and event.status.is_final:
                        finished.add(event.job_id)
                    async with changed:
                        changed.notify_all()

            tg.start_soon(show)
            await rt.run_worker(4, burst=True)
            done = {j.id for j in (await rt.list(limit=10_000)).jobs if j.status.is_final}
            with anyio.move_on_after(10):
                async with changed:
                    while not done <= finished:
                        await changed.wait()
            tg.cancel_scope.cancel()


def _print_results(jobs: list[bj.Job]) -> None:
    """One line per job (type, status, attempts, parent), then its output or last error."""
    click.echo("\nResults:")
    for job in jobs:
        parent = f" (enqueued by #{job.parent_id})" if job.parent_id else ""
        click.echo(
            f"  #{job.id} {job.type} {job.status.value} after {job.attempts} attempt(s){parent}:"
        )
        error = job.last_error
        outcome = (
            job.output
            if job.status is bj.JobStatus.SUCCEEDED or error is None
            else f"{error.type}: {error.message}"
        )
        click.echo(f"      {json.dumps(_brief(outcome))}")


def _brief(data: Any) -> Any:
    """`data` with each artifact reference shortened to its key, for one-line results."""
    if isinstance(data, dict):
        if {"key", "sha256", "content_type"} <= data.keys():
            return f"artifact {data['key']}"
        return {k: _brief(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_brief(v) for v in data]
    return data


def _print_report(rt: bj.Runtime, jobs: list[bj.Job]) -> None:
    """Say where the report PDF is, or fail with the error that stopped the workflow."""
    report = next((j for j in jobs if j.type == report_pdf.name), None)
    if report is None or report.status is not bj.JobStatus.SUCCEEDED:
        failed = next((j for j in jobs if j.type.startswith("demo.report.") and j.errors), None)
        error = failed.last_error if failed else None
        raise bj.JobFailed(
            failed.id if failed else 0,
            f"{error.type}: {error.message}" if error else "the report was not made",
            failed.attempts if failed else 0,
        )
    result = report_pdf.parse_output(report.output)
    where = (
        rt.artifacts.path(result.pdf).resolve()
        if isinstance(rt.artifacts, DirectoryArtifactStore)
        else f"artifact {result.pdf.key}"
    )
    click.echo(f"\nReport PDF ({result.pages} page(s), {result.pdf.size} bytes): {where}")
