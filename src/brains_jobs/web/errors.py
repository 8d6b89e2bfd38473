"""Every error as JSON of one shape, `{"error": {"type", "message", "fields"?}}`, with
the status each library error stands for.

- 404: `JobNotFound`, `TemplateNotFound`, an unknown route;
- 422: `InvalidJobInput`, `InvalidJobOutput`, `InvalidJobOption`, `UnknownJobType`,
  `ConfigurationError`, a malformed request;
- 409: `InvalidJobState`, `DuplicateJob`;
- 413: `PayloadTooLarge`;
- 503: `StoreError`;
- 500: anything else (its message is logged, not sent).

The dashboard's pages answer their errors as HTML instead: the app's
`state.html_errors(request, status, type, message)` renders a page for the paths it owns
(and None for the others).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..exceptions import (
    BrainsJobsError,
    ConfigurationError,
    DuplicateJob,
    InvalidJobInput,
    InvalidJobOption,
    InvalidJobOutput,
    InvalidJobState,
    JobNotFound,
    PayloadTooLarge,
    StoreError,
    TemplateNotFound,
    UnknownJobType,
)

logger = logging.getLogger("brains_jobs.web")


class FieldError(BaseModel):
    """One bad field: its dotted path and what is wrong with it."""

    field: str
    message: str


class ErrorDetail(BaseModel):
    """What went wrong: a type (the error's class name or the HTTP reason), a message,
    and for validation errors each bad field.
    """

    type: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error answered as is, with a status and the one error shape."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        fields: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.fields = fields
        self.headers = dict(headers or {})


_STATUSES: tuple[tuple[type[BrainsJobsError], int], ...] = (
    (JobNotFound, 404),
    (TemplateNotFound, 404),
    (InvalidJobInput, 422),
    (InvalidJobOutput, 422),
    (InvalidJobOption, 422),
    (UnknownJobType, 422),
    (ConfigurationError, 422),
    (InvalidJobState, 409),
    (DuplicateJob, 409),
    (PayloadTooLarge, 413),
    (StoreError, 503),
)

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def status_of(exc: BrainsJobsError) -> int:
    """The HTTP status a library error stands for."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def field_errors(errors: Sequence[Mapping[str, Any]], prefix: str = "") -> list[FieldError]:
    """Pydantic-style errors as `FieldError`s, each path under `prefix`."""
    result = []
    for err in errors:
        where = _dotted(err.get("loc", ()))
        path = f"{prefix}.{where}" if prefix and where else prefix or where
        result.append(FieldError(field=path or "(body)", message=str(err.get("msg", "invalid"))))
    return result


def error_response(
    status: int,
    type: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A response of the one error shape."""
    body = ErrorBody(error=ErrorDetail(type=type, message=message, fields=fields))
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


HtmlErrors = Callable[[Request, int, str, str], Response | None]
"""Renders an error as a page for the paths it owns, or None to answer JSON."""


def _reply(
    request: Request,
    status: int,
    type: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    html: HtmlErrors | None = getattr(request.app.state, "html_errors", None)
    if html is not None:
        page = html(request, status, type, message)
        if page is not None:
            return page
    return error_response(status, type, message, fields, headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _reply(request, exc.status, exc.type, exc.message, exc.fields, exc.headers)


async def _library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BrainsJobsError)
    status = status_of(exc)
    fields = None
    if isinstance(exc, InvalidJobInput):
        fields = field_errors(exc.errors, "input")
    elif isinstance(exc, InvalidJobOutput):
        fields = field_errors(exc.errors, "output")
    elif isinstance(exc, InvalidJobOption):
        fields = [FieldError(field=exc.option, message=exc.problem)]
    if status == 500:
        logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _reply(request, 500, type(exc).__name__, "internal server error")
    return _reply(request, status, type(exc).__name__, str(exc), fields)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = field_errors(exc.errors())
    listing = "; ".join(f"{f.field}: {f.message}" for f in fields)
    return _reply(request, 422, "ValidationError", f"invalid request: {listing}", fields)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    reason = _REASONS.get(exc.status_code, f"HTTP{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else reason
    return _reply(request, exc.status_code, reason, message, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _reply(request, 500, "InternalServerError", "internal server error")


def install(app: FastAPI) -> None:
    """Answer every error of `app` in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BrainsJobsError, _library_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "no or bad credentials"),
        (403, "the role may not do this"),
        (404, "no such job (or not the caller's)"),
        (409, "the action does not apply to the job's status"),
        (413, "the input or output is too large"),
        (422, "invalid request, input or output; `fields` names each bad field"),
        (503, "the database is unreachable"),
    )
}
"""The error responses every `/api` route documents."""
