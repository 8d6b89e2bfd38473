"""Signing in and out of the dashboard: a token (and, optionally, its user) exchanged for
a session cookie.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ..auth import resolve_principal
from ..session import CSRF_FIELD
from .render import (
    PREFIX,
    base_path,
    first,
    form,
    local_path,
    page,
    read_form,
    redirect,
    sessions_of,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
logger = logging.getLogger("brains_jobs.web")


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (or the dashboard, for a caller already known)."""
    if await resolve_principal(request) is not None:
        return RedirectResponse(local_path(next, request), status_code=303)
    return page(
        request,
        "login.html",
        None,
        next=local_path(next, request),
        can_sign_in=sessions_of(request).can_sign_in,
        error=None,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange a token (and its user, when given) for a new session cookie."""
    sessions = sessions_of(request)
    fields = await read_form(request)
    sessions.check(request, first(fields, CSRF_FIELD))
    token = first(fields, "token")
    user = first(fields, "user")
    target = local_path(first(fields, "next"), request)
    principal = sessions.sign_in(token, user or None) if token else None
    if principal is None:
        # Neither the token nor the user name goes to the log.
        logger.info("dashboard sign-in refused from %s", _client(request))
        return page(
            request,
            "login.html",
            None,
            status=401,
            next=target,
            can_sign_in=sessions.can_sign_in,
            error="Unknown user or token.",
        )
    response = RedirectResponse(target, status_code=303)
    # A fresh session id on sign-in: a session planted before it is worth nothing after.
    sessions.set_cookie(response, request, sessions.new(token.strip()))
    logger.info("dashboard sign-in: %s (%s)", principal.user, principal.role.value)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session: the cookie is removed."""
    await form(request)
    response = redirect(request, "/login", "signed-out")
    sessions_of(request).clear_cookie(response, request)
    return response


@router.get("")
async def home(request: Request) -> Response:
    """`/dashboard` is `/dashboard/`."""
    return RedirectResponse(base_path(request) + "/", status_code=307)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
