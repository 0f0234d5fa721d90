"""The API's JSON errors: which expected failure becomes which HTTP status, in one place.

Every error body is ``{"error", "message", "details"}``: 401 no or bad token, 403 a decision beyond
one's role, 404 an unknown order or request, 409 a request already decided, 413 a body or paste over
its limit (named), 422 malformed input or an action the guard blocks, 429 over the user's rate limit
(with Retry-After), 503 a part that is not ready or a database that cannot be reached (with
Retry-After: the request changed nothing).
A failure that is none of these is a bug and propagates (500).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from tools.db import DatabaseError
from tools.errors import Conflict, Forbidden, GuardBlocked, NotFound, ToolError
from ui.api.auth import AuthError, TokenConfigError
from ui.api.limits import RateLimited
from ui.api.models import ErrorResponse
from ui.api.service import LimitExceeded, Unavailable

__all__ = ["ERROR_RESPONSES", "error_for", "error_response"]

log = logging.getLogger("copilot.api")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "Missing, invalid or expired bearer token.",
        403: "The signed-in role may not do this.",
        404: "Unknown order, request or thread.",
        409: "The request was already decided.",
        413: "Body or pasted text over its size limit (the message names the limit).",
        422: "Malformed input, or the guard blocked the action (reasons in details).",
        429: "Too many requests from this user (Retry-After says when to try again).",
        503: "A part of the service is not ready.",
    }.items()
}


def error_response(
    status: int, code: str, message: str, details: list[str] | None = None, headers=None
) -> JSONResponse:
    body = ErrorResponse(error=code, message=message, details=details or []).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def error_for(exc: Exception) -> JSONResponse | None:
    """The HTTP error of an expected failure; ``None`` for a bug (which then propagates as a 500)."""
    if isinstance(exc, AuthError):
        return error_response(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, Forbidden):
        return error_response(403, "forbidden", str(exc))
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, RateLimited):
        return error_response(429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, LimitExceeded):
        return error_response(413, "too_large", str(exc))
    if isinstance(exc, GuardBlocked):
        return error_response(422, "guard_blocked", str(exc), [str(r) for r in exc.reasons])
    if isinstance(exc, Unavailable):
        return error_response(503, "unavailable", str(exc))
    if isinstance(exc, DatabaseError):
        return error_response(503, "database_unavailable", str(exc))
    if isinstance(exc, TokenConfigError):  # the tokens file is half-written or broken: fail closed
        log.error("%s: no token of that file is accepted until it is fixed", exc)  # names no token
        return error_response(  # the caller may be anyone: no path of this machine
            503,
            "tokens_unavailable",
            "the service's API tokens cannot be read right now; retry (the service log has the details)",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, OperationalError):  # the database went away (or is busy) mid-request
        return error_response(
            503,
            "database_unavailable",
            "the database cannot be reached right now: nothing was changed; retry "
            "(the service log has the details)",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, ToolError):
        return error_response(422, "invalid", str(exc))
    return None
