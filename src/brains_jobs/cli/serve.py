"""The `serve` command: the HTTP API (`brains_jobs.web`) alone, with uvicorn.

FastAPI and uvicorn come with the `web` extra; they are imported when the command runs,
so the rest of the command line works without them.
"""

from __future__ import annotations

import ipaddress
from types import FrameType

import click

from ..config import Settings
from ..exceptions import ConfigurationError
from .options import DURATION, common, run_command


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@common
@click.option(
    "--database",
    "database",
    metavar="URL",
    default=None,
    help="The database (the same as --db). [env: BRAINS_JOBS_DATABASE_URL]",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to bind.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Let every request in as an admin, without a token; only with --host 127.0.0.1.",
)
@click.option(
    "--heartbeat",
    type=DURATION,
    default=15.0,
    show_default=True,
    help="Seconds without an event after which /api/events sends a ping comment.",
)
@run_command
async def serve(
    settings: Settings,
    database: str | None,
    host: str,
    port: int,
    insecure_no_auth: bool,
    heartbeat: float,
) -> None:
    """Serve the HTTP API (JSON routes, server-sent events, /healthz) with uvicorn.

    Requests need `Authorization: Bearer <token>`, with the tokens of
    BRAINS_JOBS_API_TOKENS ('TOKEN USER ROLE, ...') or of the file named by
    BRAINS_JOBS_API_TOKENS_FILE; the command refuses to start without any, unless
    --insecure-no-auth is given with a loopback --host. Workers run in other processes.
    """
    try:
        import uvicorn

        from ..web import create_app
        from ..web import insecure_no_auth as allow_all
    except ImportError as exc:
        raise ConfigurationError(
            f"brains-jobs serve needs the web extra: pip install 'brains-jobs[web]' ({exc})"
        ) from None
    if database is not None:
        settings = settings.model_copy(update={"database_url": database})
    if insecure_no_auth and not _loopback(host):
        raise ConfigurationError(
            f"--insecure-no-auth lets everyone in as an admin: only with --host 127.0.0.1,"
            f" not {host!r}"
        )
    if insecure_no_auth:
        click.echo("warning: --insecure-no-auth: every request is an admin", err=True)
    app = create_app(
        settings,
        auth=allow_all if insecure_no_auth else None,
        heartbeat=heartbeat,
        runtime_options={"wait_for_db": settings.wait_for_db},
        session_secret=(
            settings.session_secret.get_secret_value() if settings.session_secret else None
        ),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=10,
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Event streams never end by themselves: tell them to, or uvicorn waits.
            app.state.closing = True
            super().handle_exit(sig, frame)

    await Server(config).serve()


COMMANDS = [serve]
