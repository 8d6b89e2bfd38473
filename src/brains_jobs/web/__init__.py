"""The HTTP API of brains-jobs (the `web` extra): JSON routes to enqueue, read, follow
(server-sent events) and administer jobs, with token auth and roles.

``create_app(url)`` returns the FastAPI app; ``brains-jobs serve`` runs it with uvicorn.
`Principal` and `current_principal` are the seam for other ways of signing in.
"""

from __future__ import annotations

from .app import create_app as create_app
from .auth import Principal as Principal
from .auth import Resolver as Resolver
from .auth import Role as Role
from .auth import TokenAuth as TokenAuth
from .auth import current_principal as current_principal
from .auth import insecure_no_auth as insecure_no_auth
from .dependencies import get_runtime as get_runtime
from .errors import ApiError as ApiError

__all__ = [
    "ApiError",
    "Principal",
    "Resolver",
    "Role",
    "TokenAuth",
    "create_app",
    "current_principal",
    "get_runtime",
    "insecure_no_auth",
]
