"""The `schedules` command: recurring jobs, and what became of their ticks."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from ..config import Settings
from .options import common, run_command, runtime


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.command()
@common
@click.option("--ticks", "ticks_of", metavar="NAME", help="Show the latest ticks of NAME.")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="With --ticks: how many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@run_command
async def schedules(settings: Settings, ticks_of: str | None, limit: int, as_json: bool) -> None:
    """List the recurring jobs with their next and last runs; with --ticks NAME, what
    became of the latest ticks of one (enqueued with its job, skipped or missed, and why).
    """
    async with runtime(settings, read_only=True) as rt:
        if ticks_of is not None:
            found = await rt.schedule_ticks(ticks_of, limit=limit)
            for tick in found:
                if as_json:
                    click.echo(tick.model_dump_json())
                    continue
                job = f" job {tick.job_id}" if tick.job_id is not None else ""
                detail = f"  {tick.detail}" if tick.detail else ""
                click.echo(f"{_when(tick.tick)}  {tick.outcome:<8}{job}{detail}")
            if not found and not as_json:
                click.echo(f"no ticks recorded for {ticks_of!r}")
            return
        listed = await rt.schedules()
        for info in listed:
            if as_json:
                click.echo(info.model_dump_json())
                continue
            paused = "  PAUSED" if info.paused else ""
            click.echo(
                f"{info.name}  type={info.job_type}  {info.schedule.describe()}"
                f"  missed={info.schedule.missed}  next={_when(info.next_run_at)}"
                f"  last={_when(info.last_run_at)}{paused}"
            )
        if not listed and not as_json:
            click.echo("no schedules")
