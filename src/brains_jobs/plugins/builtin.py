"""The core's own parts, registered through the same hooks as any plugin."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ..artifacts import ArtifactStore, DirectoryArtifactStore
from ..maintenance import builtin_services
from ..store import Store, StoreOptions
from .hookspecs import RegisterArtifactStore, RegisterService, RegisterStore, hookimpl


def _sqlite(options: StoreOptions) -> Store:
    from ..store.sqlite import SQLiteStore

    return SQLiteStore(
        options.url,
        statement_timeout=options.statement_timeout,
        create_file=not options.must_exist,
    )


def _postgres(options: StoreOptions) -> Store:
    from ..store.postgres import PostgresStore

    return PostgresStore(options.url, statement_timeout=options.statement_timeout)


def _directory(url: str) -> ArtifactStore:
    parsed = urlparse(url)
    path = unquote(parsed.path) if parsed.scheme == "file" else url
    return DirectoryArtifactStore(Path(path))


@hookimpl
def brains_jobs_register_stores(register: RegisterStore) -> None:
    """SQLite and PostgreSQL are built in."""
    register("sqlite", _sqlite)
    register("postgresql", _postgres)
    register("postgres", _postgres)  # the scheme libpq also accepts


@hookimpl
def brains_jobs_register_artifact_stores(register: RegisterArtifactStore) -> None:
    """Directories are built in: `file:///path` or a plain path."""
    register("file", _directory)


@hookimpl
def brains_jobs_register_services(register: RegisterService) -> None:
    """The rescuer, the pruner and the workers reaper are built in."""
    for service in builtin_services():
        register(service)
