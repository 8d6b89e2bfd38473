"""Options of the command line, made from the one `Settings` object: each flag shows its
environment variable and default in `--help`, and a flag not given leaves the value to
the environment variable, then to the default (pydantic-settings reads both).

The common options (`--db`, `--plugin`, `--log-level`, `--log-format`) work before the
subcommand (`brains-jobs --db X list`) and after it (`brains-jobs list --db X`).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
import click

from ..config import Settings, describe_default, env_name, load_settings
from ..durations import parse_seconds
from ..exceptions import (
    BrainsJobsError,
    ConfigurationError,
    InvalidJobInput,
    InvalidJobOption,
    InvalidJobOutput,
    PayloadTooLarge,
    PluginError,
    UnknownJobType,
)
from ..runtime import Runtime
from .logs import setup_logging

P = ParamSpec("P")
T = TypeVar("T")

USAGE_ERRORS = (
    InvalidJobInput,
    InvalidJobOutput,
    InvalidJobOption,
    UnknownJobType,
    ConfigurationError,
    PluginError,
    PayloadTooLarge,
)
COMMON = (
    "database_url",
    "plugin_modules",
    "plugins_allow",
    "plugins_deny",
    "artifacts",
    "statement_timeout",
    "max_payload",
    "log_level",
    "log_format",
)


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in stubs
    """A duration: `30s`, `5m`, `12h`, `7d`, or seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_seconds(value, name=param.name if param and param.name else "duration")
        except ConfigurationError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def setting(field: str, *decls: str, help: str | None = None, **kwargs: Any) -> Callable[[T], T]:
    """A click option for settings field `field`: no default of its own (None when not
    given), its help naming the variable and the default.
    """
    info = Settings.model_fields[field]
    text = help or (info.description or field)
    text = (
        f"{text[0].upper()}{text[1:]}. [env: {env_name(field)}; default: {describe_default(field)}]"
    )
    return click.option(*decls, field, default=None, help=text, **kwargs)  # type: ignore[return-value]


def _common_options(fn: Callable[P, T]) -> Callable[P, T]:
    for option in reversed(
        [
            setting("database_url", "--db"),
            setting(
                "plugin_modules",
                "--plugin",
                multiple=True,
                help="plugin module to load besides the installed ones"
                " (package.module[:attr]); repeatable",
            ),
            setting("plugins_allow", "--plugins-allow"),
            setting("plugins_deny", "--plugins-deny"),
            setting("artifacts", "--artifacts"),
            setting("statement_timeout", "--statement-timeout", type=DURATION),
            setting("max_payload", "--max-payload", type=click.IntRange(min=1)),
            setting(
                "log_level",
                "-l",
                "--log-level",
                type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
            ),
            setting("log_format", "--log-format", type=click.Choice(["text", "json"])),
        ]
    ):
        fn = option(fn)
    return fn


def common(fn: Callable[P, T]) -> Callable[P, T]:
    """The common options, on a subcommand (they also work on the group)."""
    return _common_options(fn)


group_options = _common_options


def settings_from(ctx: click.Context, **given: Any) -> Settings:
    """`Settings` from the given options, the group's common options, the environment
    and the defaults, in that order.
    """
    merged: dict[str, Any] = {}
    root = ctx.find_root()
    for name in COMMON:
        value = (root.params or {}).get(name)
        if value not in (None, ()):
            merged[name] = value
    for name, value in given.items():
        if value not in (None, ()):
            merged[name] = list(value) if isinstance(value, tuple) else value
    return load_settings(**merged)


def runtime(settings: Settings, **options: Any) -> Runtime:
    """A runtime on `settings` (installed plugins loaded)."""
    return Runtime(settings=settings, **options)


def run_command(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Run an async command: its options named like settings fields become its
    `Settings` (its first argument), logging is set up, and library errors become one
    line and an exit code (2 for bad usage or input, 1 for the rest).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        ctx = click.get_current_context()
        try:
            given = {k: kwargs.pop(k) for k in list(kwargs) if k in Settings.model_fields}
            settings = settings_from(ctx, **given)
            setup_logging(settings.log_level, settings.log_format)
            return anyio.run(functools.partial(fn, settings, *args, **kwargs))
        except USAGE_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except BrainsJobsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except TimeoutError as exc:
            click.echo(f"error: {exc or 'timed out'}", err=True)
            sys.exit(1)

    return wrapper


def cwd_on_path() -> None:
    """`--plugin module` finds modules of the current directory, as `python -m` does."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
