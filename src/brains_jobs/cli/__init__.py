"""The `brains-jobs` command line.

Every option can also be set with the `BRAINS_JOBS_*` environment variable shown in
`--help`. Exit codes: 0 success, 1 a job or store error, 2 bad usage or bad input.

Plugins add commands through the `brains_jobs_register_commands` hook; `run_command`,
`common` and `ProgressView` are here for them.
"""

from __future__ import annotations

import click

from ..exceptions import BrainsJobsError
from ..plugins.host import PluginHost
from .admin import COMMANDS as ADMIN_COMMANDS
from .display import ProgressView, format_event
from .jobs import COMMANDS as JOB_COMMANDS
from .operate import COMMANDS as OPERATOR_COMMANDS
from .options import common, cwd_on_path, group_options, run_command, settings_from
from .schedules import schedules
from .serve import serve
from .templates import templates


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brains-jobs")
@group_options
def cli(**common: object) -> None:
    """brains-jobs: typed background jobs on SQLite or PostgreSQL."""


for _command in (*JOB_COMMANDS, *ADMIN_COMMANDS, *OPERATOR_COMMANDS):
    cli.add_command(_command)
cli.add_command(schedules)
cli.add_command(templates)
cli.add_command(serve)


def main() -> None:
    """Entry point of the `brains-jobs` script, with plugin commands added."""
    cwd_on_path()
    try:
        settings = settings_from(click.Context(cli))
        PluginHost(allow=settings.plugins_allow, deny=settings.plugins_deny).add_commands(cli)
    except BrainsJobsError as exc:
        click.echo(f"warning: plugin commands unavailable: {exc}", err=True)
    cli()


__all__ = ["ProgressView", "cli", "common", "format_event", "main", "run_command"]
