"""`create_app`: the FastAPI application of the HTTP API, for `brains-jobs serve` or for
a host application to mount or extend.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI

from ..config import Settings
from ..exceptions import ConfigurationError
from ..runtime import Runtime
from . import actions, bulk, errors, jobs, metrics, openapi, stream, system
from .auth import TOKENS_ENV, TOKENS_FILE_ENV, Resolver, TokenAuth
from .session import Sessions

DEFAULT_HEARTBEAT = 15.0


def create_app(
    runtime: Runtime | str | Settings | None = None,
    *,
    auth: Resolver | None = None,
    routers: Iterable[APIRouter] = (),
    heartbeat: float = DEFAULT_HEARTBEAT,
    runtime_options: Mapping[str, Any] | None = None,
    title: str = "brains-jobs",
    dashboard: bool = True,
    session_secret: str | bytes | None = None,
    trusted_origins: Iterable[str] = (),
) -> FastAPI:
    """The HTTP API as a FastAPI app (an ASGI app).

    :param runtime: a `Runtime`, or what makes one: a database URL or a `Settings`
        (None: the `BRAINS_JOBS_*` settings). A runtime that is not open yet is opened
        by the app's lifespan and closed with it; an open one is left to its owner (a
        host application that mounts this app opens it in its own lifespan, since
        mounted apps get no lifespan of their own).
    :param auth: who is asking: a callable `request -> Principal | None` (sync or async),
        None for the tokens of `BRAINS_JOBS_API_TOKENS` and `BRAINS_JOBS_API_TOKENS_FILE`
        (a `ConfigurationError` when there are none). `insecure_no_auth` lets everyone in
        as an admin.
    :param routers: more routers to include (they may depend on `current_principal`
        and `get_runtime`); the returned app can also be extended directly.
    :param heartbeat: seconds without an event after which `/api/events` sends a
        `: ping` comment.
    :param runtime_options: keyword arguments of the `Runtime` made from a URL or settings.
    :param title: the API's title in its OpenAPI document.
    :param dashboard: serve the dashboard at `/dashboard` (and send `/` there); its
        session cookie then also signs in to the API (see `brains_jobs.web.session`).
    :param session_secret: the key that signs session cookies (at least 16 bytes);
        None: a random key made for this process (sessions end when it stops, and other
        server processes do not know them).
    :param trusted_origins: origins besides the server's own from which the dashboard's
        forms may be posted (`https://jobs.example.com`, behind a proxy that changes the
        host).
    """
    rt = _runtime(runtime, runtime_options or {})
    if auth is None:
        tokens = TokenAuth.from_settings(runtime if isinstance(runtime, Settings) else None)
        if not len(tokens):
            raise ConfigurationError(
                f"no API tokens: set {TOKENS_ENV} ('TOKEN USER ROLE, ...') or"
                f" {TOKENS_FILE_ENV} (a file of 'TOKEN USER ROLE' lines)"
            )
        auth = tokens
    if not heartbeat > 0:
        raise ConfigurationError(f"heartbeat must be a positive number of seconds, got {heartbeat}")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if _is_open(rt):
            yield
            return
        async with rt:
            yield

    app = FastAPI(
        title=title,
        version=_version(),
        description="Enqueue, follow and administer brains-jobs jobs.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.resolver = auth
    app.state.heartbeat = float(heartbeat)
    app.state.closing = False  # True ends the event streams (the server is stopping)
    errors.install(app)
    for router in (
        system.health_router,
        bulk.router,
        jobs.router,
        actions.router,
        stream.router,
        system.router,
        metrics.router,
        *routers,
    ):
        app.include_router(router)
    openapi.install(app, rt.registry)
    if dashboard:
        from . import dashboard as pages

        sessions = Sessions(
            session_secret,
            tokens=auth if isinstance(auth, TokenAuth) else None,
            trusted_origins=trusted_origins,
        )
        pages.install(app, sessions)
    return app


def _runtime(given: Runtime | str | Settings | None, options: Mapping[str, Any]) -> Runtime:
    if isinstance(given, Runtime):
        if options:
            raise ConfigurationError("runtime_options apply to a runtime made from a URL")
        return given
    if isinstance(given, Settings):
        return Runtime(settings=given, **options)
    return Runtime(given, **options)


def _is_open(rt: Runtime) -> bool:
    try:
        rt.store  # noqa: B018 -- raises while the runtime is closed
    except ConfigurationError:
        return False
    return True


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brains-jobs")
    except PackageNotFoundError:
        return "0"
