"""Who is asking: `Principal`, API tokens, and the dependencies that check roles.

Each request is resolved to a `Principal` (a user and a role) by the app's resolver: by
default `TokenAuth`, which reads `Authorization: Bearer <token>` and looks the token up
among the configured ones. A host application replaces it with any callable
`request -> Principal | None` (sync or async), a session cookie for instance. When the
resolver finds nobody, the dashboard's session cookie (`brains_jobs.web.session`) is
tried; a state-changing request authenticated by that cookie must carry the session's
CSRF token (`X-CSRF-Token`) and come from the server's own origin.

Roles: `user` sees and acts on its own jobs only (`owner == user`); `viewer` reads
everything and changes nothing; `admin` reads and changes everything.

Token lists come from `BRAINS_JOBS_API_TOKENS` (entries separated by commas or new
lines, each `TOKEN USER ROLE`) or the file named by `BRAINS_JOBS_API_TOKENS_FILE` (one
entry per line, `#` starts a comment). Only the SHA-256 digest of each token is kept,
and a presented token is compared with every digest in constant time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, Request

from ..config import Settings, load_settings
from ..exceptions import ConfigurationError
from ..models import Job
from .errors import ApiError


class SessionReader(Protocol):
    """What the API needs of the dashboard's sessions (`brains_jobs.web.session`)."""

    def principal(self, request: Request) -> Principal | None:
        """The principal of the request's session cookie, or None."""

    def check(self, request: Request, presented: str | None) -> None:
        """Raise `ApiError(403)` unless `presented` is the session's CSRF token."""


TOKENS_ENV = "BRAINS_JOBS_API_TOKENS"
TOKENS_FILE_ENV = "BRAINS_JOBS_API_TOKENS_FILE"


class Role(enum.StrEnum):
    """What a principal may do."""

    USER = "user"  # its own jobs only
    VIEWER = "viewer"  # read everything, change nothing
    ADMIN = "admin"  # everything


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user name (the owner of the jobs it creates) and a role."""

    user: str
    role: Role

    @property
    def can_write(self) -> bool:
        """True unless the principal is a viewer."""
        return self.role is not Role.VIEWER

    @property
    def sees_all(self) -> bool:
        """True for the roles that read every job (admin, viewer)."""
        return self.role is not Role.USER

    def sees(self, job: Job) -> bool:
        """Whether this principal may see `job` (a user: only the jobs it owns)."""
        return self.sees_all or job.owner == self.user


Resolver = Callable[[Request], "Principal | Awaitable[Principal | None] | None"]
"""Turns a request into its `Principal`, or None when it carries no valid credentials."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_tokens(text: str, *, source: str) -> list[tuple[str, Principal]]:
    """`(token, Principal)` pairs from `TOKEN USER ROLE` entries separated by commas or
    new lines; `#` starts a comment. A malformed entry is a `ConfigurationError` naming
    its position (never the token).
    """
    entries: list[tuple[str, Principal]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for part in line.split(","):
            fields = part.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise ConfigurationError(
                    f"{source}, line {number}: expected 'TOKEN USER ROLE', got"
                    f" {len(fields)} field(s)"
                )
            token, user, role = fields
            try:
                entries.append((token, Principal(user, Role(role))))
            except ValueError:
                roles = ", ".join(r.value for r in Role)
                raise ConfigurationError(
                    f"{source}, line {number}: unknown role {role!r} for user {user!r};"
                    f" roles are {roles}"
                ) from None
    return entries


class TokenAuth:
    """The default resolver: `Authorization: Bearer <token>` against a list of tokens,
    of which only SHA-256 digests are kept.
    """

    def __init__(self, tokens: Mapping[str, Principal] | list[tuple[str, Principal]]) -> None:
        pairs = list(tokens.items()) if isinstance(tokens, Mapping) else list(tokens)
        self._digests = [(_digest(token), principal) for token, principal in pairs]

    def __len__(self) -> int:
        return len(self._digests)

    def digests(self) -> list[tuple[bytes, Principal]]:
        """The SHA-256 digest of each token, with its principal."""
        return list(self._digests)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TokenAuth:
        """The tokens of `api_tokens` (`BRAINS_JOBS_API_TOKENS`) and of the file named by
        `api_tokens_file` (`BRAINS_JOBS_API_TOKENS_FILE`); both may be set. None: the
        settings of the environment.
        """
        settings = load_settings() if settings is None else settings
        given = settings.api_tokens.get_secret_value() if settings.api_tokens else ""
        pairs = parse_tokens(given, source=TOKENS_ENV)
        path = (settings.api_tokens_file or "").strip()
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    f"{TOKENS_FILE_ENV}: cannot read {path}: {exc.strerror}"
                ) from None
            pairs += parse_tokens(text, source=path)
        return cls(pairs)

    def resolve(self, token: str) -> Principal | None:
        """The principal of `token`, or None. Every digest is compared, in constant time."""
        presented = _digest(token)
        found = None
        for digest, principal in self._digests:
            if hmac.compare_digest(presented, digest):
                found = principal
        return found

    def __call__(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.resolve(token.strip())


def insecure_no_auth(request: Request) -> Principal:
    """Everyone is an admin: for a server bound to 127.0.0.1 on a developer's machine."""
    return Principal("local", Role.ADMIN)


async def resolve_principal(request: Request) -> Principal | None:
    """The caller, or None: the app's resolver first (a Bearer token, or the host's own
    way of signing in), then the dashboard's session cookie. Cached in
    `request.state.principal`; `request.state.by_session` says whether the cookie decided.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    resolver: Resolver = request.app.state.resolver
    found = resolver(request)
    if inspect.isawaitable(found):
        found = await found
    by_session = False
    if not isinstance(found, Principal):
        sessions: SessionReader | None = getattr(request.app.state, "sessions", None)
        found = None if sessions is None else sessions.principal(request)
        by_session = found is not None
    if found is None:
        return None
    request.state.principal = found
    request.state.by_session = by_session
    return found


async def current_principal(request: Request) -> Principal:
    """The dependency every `/api` route takes: the caller, or 401. A state-changing
    request authenticated by the session cookie must carry its CSRF token (403).
    """
    found = await resolve_principal(request)
    if found is None:
        raise ApiError(
            401,
            "Unauthorized",
            "missing or invalid credentials: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if (
        getattr(request.state, "by_session", False)
        and request.method not in _SAFE_METHODS
        and not getattr(request.state, "csrf_checked", False)
    ):
        sessions: SessionReader = request.app.state.sessions
        sessions.check(request, request.headers.get(CSRF_HEADER))
        request.state.csrf_checked = True
    return found


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The header that carries the CSRF token of a session's API calls.
CSRF_HEADER = "x-csrf-token"


async def writer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, who must be allowed to change things (not a viewer), or 403."""
    if not principal.can_write:
        raise ApiError(403, "Forbidden", f"role {principal.role.value!r} cannot change jobs")
    return principal


async def admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, who must be an admin, or 403."""
    if principal.role is not Role.ADMIN:
        raise ApiError(403, "Forbidden", "this route is for admins")
    return principal


Reader = Annotated[Principal, Depends(current_principal)]
Writer = Annotated[Principal, Depends(writer)]
Admin = Annotated[Principal, Depends(admin)]
