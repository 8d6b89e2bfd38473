"""The `templates` commands: named presets of a job (type, input defaults, options)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from ..config import Settings
from ..exceptions import TemplateNotFound
from .options import DURATION, common, run_command, runtime

if TYPE_CHECKING:
    from ..models import TemplateInfo

P = ParamSpec("P")
T = TypeVar("T")


def _object(text: str | None, hint: str) -> dict[str, Any]:
    """The JSON object in `text` (None: an empty one), or a usage error."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter("expected a JSON object of input fields", param_hint=hint)
    return value


def _options(info: TemplateInfo) -> str:
    if not info.options:
        return "-"
    return " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in sorted(info.options.items())
    )


def _job_options(**given: Any) -> dict[str, Any]:
    """The options given on the command line, for `save_template` or `enqueue_template`."""
    options = {k: v for k, v in given.items() if v not in (None, ())}
    if "tags" in options:
        options["tags"] = list(options["tags"])
    return options


def _option_flags(fn: Callable[P, T]) -> Callable[P, T]:
    """The enqueue options a template keeps, or that a call gives over its own."""
    for option in reversed(
        [
            click.option("--queue", help="Queue (default: the job type's)."),
            click.option("--priority", type=int, help="Higher runs first."),
            click.option(
                "--delay", type=DURATION, help="How long to wait before a job may run (30s, 5m...)."
            ),
            click.option("--unique-key", help="Enqueue only if no job holds this key."),
            click.option("--tag", "tags", multiple=True, help="Tag; repeatable."),
            click.option("--owner", help="Who the job belongs to."),
            click.option("--max-attempts", type=int, help="Attempts before a job fails."),
        ]
    ):
        fn = option(fn)
    return fn


@click.group()
def templates() -> None:
    """Job templates: named presets of a job type, its input defaults and its options
    (queue, priority, tags...), kept in the database and enqueued by name.
    """


@templates.command("list")
@common
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@run_command
async def list_(settings: Settings, as_json: bool) -> None:
    """List the templates: name, job type, options, last update."""
    async with runtime(settings, read_only=True) as rt:
        found = await rt.templates()
    for info in found:
        if as_json:
            click.echo(info.model_dump_json())
            continue
        updated = info.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"{info.name}  type={info.type}  {_options(info)}  updated={updated}")
    if not found and not as_json:
        click.echo("no templates")


@templates.command()
@common
@click.argument("name")
@run_command
async def show(settings: Settings, name: str) -> None:
    """Print a template (JSON): its job type, input defaults and options."""
    async with runtime(settings, read_only=True) as rt:
        click.echo((await rt.template(name)).model_dump_json(indent=2))


@templates.command()
@common
@click.argument("name")
@click.argument("job_type")
@click.option("--input", "input_json", help="Input defaults: a JSON object of fields.")
@_option_flags
@run_command
async def save(
    settings: Settings, name: str, job_type: str, input_json: str | None, **options: Any
) -> None:
    """Create or replace template NAME for JOB_TYPE (a type of the loaded plugins);
    every option is checked now, as `enqueue` checks it.
    """
    defaults = _object(input_json, "--input")
    async with runtime(settings) as rt:
        info = await rt.save_template(name, job_type, defaults, **_job_options(**options))
    click.echo(f"saved template {info.name} ({info.type})")


@templates.command()
@common
@click.argument("name")
@click.option("--input", "input_json", help="Input fields over the template's: a JSON object.")
@_option_flags
@run_command
async def enqueue(settings: Settings, name: str, input_json: str | None, **options: Any) -> None:
    """Enqueue a job from template NAME; prints the job id. Options given here replace
    the template's.
    """
    overrides = _object(input_json, "--input")
    async with runtime(settings) as rt:
        handle = await rt.enqueue_template(name, overrides, **_job_options(**options))
    click.echo(handle.id if handle.created else f"{handle.id} (existing job with that key)")


@templates.command()
@common
@click.argument("name")
@run_command
async def delete(settings: Settings, name: str) -> None:
    """Delete template NAME (jobs enqueued from it stay)."""
    async with runtime(settings) as rt:
        if not await rt.delete_template(name):
            raise TemplateNotFound(name)
    click.echo(f"deleted template {name}")
