"""Every hook a brains-jobs plugin can implement.

Hooks are plain synchronous functions that receive a `register` callable (or the CLI
group) and hand it what the plugin provides. Implement them in a module, decorate each
with `brains_jobs.hookimpl`, and point an entry point of group `brains_jobs` at the
module. Async work never runs inside a hook: subscribers registered here are called
later, on the runtime's event bus.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from ..artifacts import ArtifactStore
    from ..definitions import JobDefinition
    from ..events import EventSubscriber
    from ..maintenance import Service
    from ..models import EventKind
    from ..store import Store, StoreOptions

PROJECT = "brains_jobs"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

StoreFactory = Callable[["StoreOptions"], "Store"]
ArtifactStoreFactory = Callable[[str], "ArtifactStore"]


class Register(Protocol):
    """Registers one job definition."""

    def __call__(self, definition: JobDefinition[Any, Any], /) -> None: ...


class RegisterSubscriber(Protocol):
    """Registers an async event callback, optionally only for some job types or kinds."""

    def __call__(
        self,
        name: str,
        callback: EventSubscriber,
        /,
        *,
        types: Collection[str] | None = None,
        kinds: Collection[EventKind] | None = None,
    ) -> None: ...


class RegisterCommand(Protocol):
    """Adds a click command (or group) to the `brains-jobs` CLI."""

    def __call__(self, command: click.Command, /) -> None: ...


class RegisterStore(Protocol):
    """Maps a URL scheme prefix (`sqlite`, `postgresql`) to a store factory taking
    `StoreOptions`.
    """

    def __call__(self, scheme: str, factory: StoreFactory, /) -> None: ...


class RegisterService(Protocol):
    """Registers a maintenance service (see `brains_jobs.maintenance.Service`)."""

    def __call__(self, service: Service, /) -> None: ...


class RegisterArtifactStore(Protocol):
    """Maps a URL scheme (`file`, `s3`...) to an artifact store factory taking the URL."""

    def __call__(self, scheme: str, factory: ArtifactStoreFactory, /) -> None: ...


@hookspec
def brains_jobs_register_jobs(register: Register) -> None:
    """Register job definitions: call `register(definition)` once for each.

    Two plugins registering one job type name is an error naming both plugins.
    """


@hookspec
def brains_jobs_register_subscribers(register: RegisterSubscriber) -> None:
    """Register event subscribers: `register(name, async_callback, types=..., kinds=...)`.

    Each subscriber gets every matching event of every job, in order, for as long as the
    runtime is open. It runs on its own bounded stream: a slow subscriber misses events
    (and is told so with a `dropped` event) but never slows the worker. Exceptions it
    raises are logged.
    """


@hookspec
def brains_jobs_register_commands(register: RegisterCommand) -> None:
    """Add commands to the `brains-jobs` CLI: `register(click_command)`."""


@hookspec
def brains_jobs_register_stores(register: RegisterStore) -> None:
    """Provide job stores: `register("scheme", factory)`; a URL whose scheme (before any
    `+driver`) matches uses `factory(options)`, where `options` is a
    `brains_jobs.store.StoreOptions` (the URL, the statement timeout, whether the
    database must exist already). The SQLite and PostgreSQL stores are registered this
    way too; a store proves itself with `brains_jobs.testing.contract`.
    """


@hookspec
def brains_jobs_register_artifact_stores(register: RegisterArtifactStore) -> None:
    """Provide artifact stores: `register("scheme", factory)`; an artifacts URL with that
    scheme uses `factory(url)`. The directory store (`file:` URLs and plain paths) is
    registered this way too.
    """


@hookspec
def brains_jobs_register_services(register: RegisterService) -> None:
    """Add maintenance services: `register(service)`, an object with `name`,
    `leader_only`, `interval(settings)` and `async run_once(ctx)` (see
    `brains_jobs.maintenance.Service`). Every process that runs workers runs them; the
    `leader_only` ones in one process per database at a time.
    """
