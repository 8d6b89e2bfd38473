"""Browser sessions: a signed cookie, the CSRF token tied to it, and the Origin check.

The cookie `bj_session` holds a random session id, an expiry and, once signed in, a
*binding*: HMAC-SHA256 of the signing secret and the SHA-256 digest of the token that
signed in. It is signed with HMAC-SHA256 under the `session_secret` given to
`create_app`, or, without one, a secret made when the process starts (sessions then end
when the server restarts, and one server process does not know another's sessions).
Neither the token nor its digest is in the cookie: the binding is looked up among the
configured tokens on every request, so that a token taken out of the configuration ends
its sessions, and a role changed in it applies at once.

The cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` when the request came over https.
A session without a binding is anonymous: it only carries the CSRF token of the sign-in
form (and of every form when the app's resolver, not a session, says who is asking).

Every state-changing request made with the cookie must carry the session's CSRF token
(the `csrf` form field, or the `X-CSRF-Token` header for `fetch`), and its `Origin` (or,
without one, its `Referer`) must be the server's own origin or one of the
`trusted_origins` given to `create_app` (for a server behind a proxy that changes the
host).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from .auth import Principal, TokenAuth
from .errors import ApiError

COOKIE = "bj_session"
CSRF_FIELD = "csrf"
#: How long a session lasts, in seconds.
SESSION_TTL = 12 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session cookie: its id, its expiry (epoch seconds) and its binding to
    a token (None: anonymous).
    """

    sid: str
    expires: int
    binding: str | None = None


class Sessions:
    """Signs and reads session cookies, and checks CSRF tokens and origins.

    :param secret: the signing key (at least 16 bytes); None: a random one for this
        process.
    :param tokens: the tokens people sign in with; None: signing in is not offered
        (the app's resolver says who is asking, and sessions only carry CSRF tokens).
    :param ttl: how long a session lasts, in seconds.
    :param trusted_origins: origins besides the server's own (`https://jobs.example.com`)
        from which forms may be posted.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        tokens: TokenAuth | None = None,
        ttl: int = SESSION_TTL,
        trusted_origins: Iterable[str] = (),
    ) -> None:
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if secret is not None and len(secret) < 16:
            from ..exceptions import ConfigurationError

            raise ConfigurationError("the session secret must be at least 16 bytes long")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.ttl = ttl
        self.tokens = tokens
        self._bound: dict[str, Principal] = {}
        if tokens is not None:
            for digest, principal in tokens.digests():
                self._bound.setdefault(self._binding(digest), principal)
        self.trusted_origins = frozenset(o.rstrip("/").lower() for o in trusted_origins)

    @property
    def can_sign_in(self) -> bool:
        """Whether people sign in with a token (the app uses `TokenAuth`)."""
        return self.tokens is not None

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose + b"\0" + data, hashlib.sha256).digest()

    def _binding(self, digest: bytes) -> str:
        return _b64(self._mac(b"token", digest))

    # -- the cookie -------------------------------------------------------------------

    def encode(self, session: Session) -> str:
        """The cookie value of `session`: its JSON, then its HMAC-SHA256."""
        payload = {"s": session.sid, "e": session.expires, "b": session.binding}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{_b64(self._mac(b'cookie', body.encode('ascii')))}"

    def decode(self, value: str) -> Session | None:
        """The session of a cookie value, or None when it is forged, malformed or expired."""
        body, _, mac = value.partition(".")
        try:
            expected = self._mac(b"cookie", body.encode("ascii"))
            if not hmac.compare_digest(expected, _unb64(mac)):
                return None
            payload = json.loads(_unb64(body))
            session = Session(str(payload["s"]), int(payload["e"]), payload.get("b"))
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            return None
        if session.expires < time.time() or not session.sid:
            return None
        if session.binding is not None and not isinstance(session.binding, str):
            return None
        return session

    def read(self, request: Request) -> Session | None:
        """The request's verified session, if any."""
        value = request.cookies.get(COOKIE)
        return None if not value else self.decode(value)

    def new(self, principal_token: str | None = None) -> Session:
        """A fresh session (a new id), bound to `principal_token` when given."""
        binding = None
        if principal_token is not None:
            binding = self._binding(hashlib.sha256(principal_token.encode("utf-8")).digest())
        return Session(secrets.token_urlsafe(18), int(time.time()) + self.ttl, binding)

    def principal(self, request: Request) -> Principal | None:
        """The principal of the request's signed-in session, or None."""
        session = self.read(request)
        if session is None or session.binding is None:
            return None
        return self._bound.get(session.binding)

    def sign_in(self, token: str, user: str | None = None) -> Principal | None:
        """The principal of `token` (and of `user`, when given), or None."""
        if self.tokens is None:
            return None
        found = self.tokens.resolve(token.strip())
        if found is None or (user and user.strip() != found.user):
            return None
        return found

    def set_cookie(self, response: Response, request: Request, session: Session) -> None:
        """Send `session` as the cookie: HttpOnly, SameSite=Lax, Secure over https."""
        response.set_cookie(
            COOKIE,
            self.encode(session),
            max_age=max(0, session.expires - int(time.time())),
            path=_cookie_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response, request: Request) -> None:
        """Remove the session cookie."""
        response.delete_cookie(
            COOKIE,
            path=_cookie_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )

    # -- cross-site requests ----------------------------------------------------------

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of `session` (derived from its id; the same for its lifetime)."""
        return _b64(self._mac(b"csrf", session.sid.encode("ascii")))

    def check(self, request: Request, presented: str | None) -> None:
        """Refuse (403 `CsrfFailed`) a state-changing request that comes from another
        origin, or whose CSRF token is missing or is not its session's.
        """
        if not self.same_origin(request):
            raise ApiError(403, "CsrfFailed", "cross-origin request refused")
        session = self.read(request)
        if session is None or not presented:
            raise ApiError(403, "CsrfFailed", "missing CSRF token: reload the page")
        expected = self.csrf_token(session).encode("ascii")
        if not hmac.compare_digest(expected, presented.encode("utf-8", "replace")):
            raise ApiError(403, "CsrfFailed", "invalid CSRF token: reload the page")

    def same_origin(self, request: Request) -> bool:
        """Whether the request's `Origin` (or else `Referer`) is this server's own origin
        or a trusted one; a request with neither (not a browser's) passes.
        """
        origin = request.headers.get("origin")
        if origin is None:
            referer = request.headers.get("referer")
            if not referer:
                return True
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
        origin = origin.rstrip("/").lower()
        if origin == "null":
            return False
        own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        return origin == own or origin in self.trusted_origins


def _cookie_path(request: Request) -> str:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + "/" if root else "/"
