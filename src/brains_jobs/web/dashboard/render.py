"""What every dashboard page shares: the templates (autoescaped), the security headers,
who is asking, and the checks of posted forms (CSRF token, origin, role).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...models import JobStatus
from ..auth import Principal, resolve_principal
from ..errors import ApiError
from ..session import CSRF_FIELD, Session, Sessions

PREFIX = "/dashboard"
#: The largest form body a dashboard page takes.
MAX_FORM = 1_000_000

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

#: Messages a redirect may ask a page to show (by key, so that no text is reflected).
NOTICES = {
    "cancelled": "Cancel requested.",
    "retried": "Queued again.",
    "resubmitted": "Resubmitted as a new job.",
    "completed": "Marked succeeded.",
    "failed": "Marked failed.",
    "moved": "Moved.",
    "enqueued": "Job enqueued.",
    "signed-out": "Signed out.",
}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = (datetime.now(UTC) - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            text = f"{seconds / size:.0f} {unit}"
            break
    else:
        text = f"{seconds:.0f} s"
    return f"in {text}" if future else f"{text} ago"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("brains_jobs.web.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(pretty=_pretty, when=_when, ago=_ago, percent=_percent)
ENV.globals.update(statuses=list(JobStatus))


def base_path(request: Request) -> str:
    """The dashboard's path, under the app's mount point."""
    return str(request.scope.get("root_path", "")).rstrip("/") + PREFIX


def sessions_of(request: Request) -> Sessions:
    """The app's session manager."""
    sessions: Sessions = request.app.state.sessions
    return sessions


async def viewer(request: Request) -> Principal:
    """The caller of a dashboard page, or 401 (the sign-in page)."""
    found = await resolve_principal(request)
    if found is None:
        raise ApiError(401, "Unauthorized", "sign in to see the dashboard")
    return found


@dataclass(frozen=True, slots=True)
class Posted:
    """A checked form post: who posted it and its fields."""

    principal: Principal
    fields: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        """The first value of field `name`."""
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        """Every value of field `name`."""
        return self.fields.get(name, [])


async def read_form(request: Request) -> dict[str, list[str]]:
    """The fields of a url-encoded form body (at most `MAX_FORM` bytes)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise ApiError(415, "UnsupportedMediaType", "send an url-encoded form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise ApiError(413, "PayloadTooLarge", "the form is too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def first(fields: dict[str, list[str]], name: str) -> str:
    """The first value of a form field ("" when absent)."""
    values = fields.get(name)
    return values[0] if values else ""


async def form(request: Request) -> Posted:
    """A form posted from the dashboard: from this origin, with the session's CSRF token."""
    fields = await read_form(request)
    sessions_of(request).check(request, first(fields, CSRF_FIELD))
    return Posted(await viewer(request), fields)


async def writer_form(request: Request) -> Posted:
    """A checked form of a caller who may change things (not a viewer: 403)."""
    posted = await form(request)
    if not posted.principal.can_write:
        raise ApiError(403, "Forbidden", f"role {posted.principal.role.value!r} cannot change jobs")
    return posted


def page(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render `template` with the security headers, the CSRF token of the request's
    session (a new anonymous session when it has none) and the common context.
    """
    sessions = sessions_of(request)
    session = sessions.read(request)
    fresh: Session | None = None
    if session is None:
        session = fresh = sessions.new()
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = ENV.get_template(template).render(
        request=request,
        base=base_path(request),
        api=str(request.scope.get("root_path", "")).rstrip("/") + "/api",
        principal=principal,
        can_write=principal is not None and principal.can_write,
        signed_in=bool(getattr(request.state, "by_session", False)),
        csrf=sessions.csrf_token(session),
        notice=notice,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if fresh is not None:
        sessions.set_cookie(response, request, fresh)
    return response


def redirect(request: Request, path: str, notice: str | None = None) -> RedirectResponse:
    """A 303 to a dashboard path, with a notice from `NOTICES`."""
    target = base_path(request) + path
    if notice:
        target += ("&" if "?" in target else "?") + f"notice={quote(notice)}"
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


def local_path(value: str | None, request: Request) -> str:
    """`value` if it is a path of this dashboard (no open redirect), else its home."""
    home = base_path(request) + "/"
    if not value or not value.startswith(base_path(request)) or value.startswith("//"):
        return home
    if any(c in value for c in "\\\r\n"):
        return home
    return value


def error_page(request: Request, status: int, type: str, message: str) -> Response | None:
    """The dashboard's errors as pages (401: the sign-in page); None outside it."""
    path = request.url.path[len(str(request.scope.get("root_path", ""))) :]
    if not (path == PREFIX or path.startswith(PREFIX + "/")):
        return None
    if status == 401:
        target = f"{base_path(request)}/login"
        if request.method == "GET" and not path.startswith(PREFIX + "/login"):
            target += "?next=" + quote(request.url.path + _query(request), safe="")
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    principal = getattr(request.state, "principal", None)
    return page(
        request,
        "error.html",
        principal if isinstance(principal, Principal) else None,
        status=status,
        error_status=status,
        error_type=type,
        message=message,
    )


def _query(request: Request) -> str:
    query = request.url.query
    return f"?{query}" if query else ""
