"""A minimal third-party plugin: one job type, one event subscriber, one CLI command."""

from __future__ import annotations

import click
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.plugins.hookspecs import RegisterCommand, RegisterSubscriber


class Greeting(BaseModel):
    name: str


class Greeted(BaseModel):
    text: str


@bj.job("testplugin.greet")
async def greet(ctx: bj.JobContext, inp: Greeting) -> Greeted:
    """Say hello."""
    return Greeted(text=f"hello, {inp.name}")


SEEN: list[bj.JobEvent] = []


async def remember(event: bj.JobEvent) -> None:
    SEEN.append(event)


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    register(greet)


@bj.hookimpl
def brains_jobs_register_subscribers(register: RegisterSubscriber) -> None:
    register("remember", remember, types={"testplugin.greet"})


@click.command("testplugin-hello")
def hello() -> None:
    """Print a greeting (a command added by a plugin)."""
    click.echo("hello from testplugin")


@bj.hookimpl
def brains_jobs_register_commands(register: RegisterCommand) -> None:
    register(hello)
