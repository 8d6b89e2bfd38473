"""The live dashboard: server-rendered pages (Jinja2, autoescaped) under `/dashboard`,
with a sign-in form that sets a session cookie, the roles of the API, CSRF-checked
forms, and progress that moves over the API's server-sent events.

Everything it needs is served by the app: one stylesheet and one script under
`/dashboard/static/`, no build step and nothing from elsewhere, which lets every page
carry a strict `Content-Security-Policy`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ..session import Sessions
from . import job, jobs, login, overview
from .render import PREFIX, base_path, error_page

__all__ = ["PREFIX", "install"]


def install(app: FastAPI, sessions: Sessions) -> None:
    """Serve the dashboard from `app` at `/dashboard` (and send `/` there)."""
    app.state.sessions = sessions
    app.state.html_errors = error_page
    for router in (login.router, overview.router, jobs.router, job.router):
        app.include_router(router)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(packages=[("brains_jobs.web.dashboard", "static")]),
        name="dashboard-static",
    )

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> Response:
        return RedirectResponse(base_path(request) + "/", status_code=307)
