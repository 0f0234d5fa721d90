"""The HTTP service: a FastAPI app with the JSON API under ``/api/v1`` and the Gradio panel at ``/ui``.

``create_app(settings=None)`` builds one app around one :class:`ui.api.service.Services`.
Every endpoint but ``/health`` and ``/ready`` needs a bearer token (``ui.api.auth``). Errors are JSON
``{"error", "message", "details"}``: 401 no or bad token, 403 a decision beyond one's role, 404 an
unknown order or request, 409 a request already decided, 413 a body or paste over its limit
(named), 422 malformed input or an action the guard blocks, 503 a part that is not ready.

Endpoints of features whose module is not installed (governance and audit, the copilot façade,
the KPIs) are left out of the app and of its OpenAPI schema; ``/ready`` lists which are served.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.settings import Settings, apply_offline_defaults, get_settings
from tools.db import DatabaseError
from tools.errors import NotFound, ToolError
from ui.api.auth import AuthError
from ui.api.models import MAX_BODY_BYTES, ErrorResponse
from ui.api.service import LimitExceeded, Services, Unavailable

__all__ = ["ERROR_RESPONSES", "create_app"]

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
        503: "A part of the service is not ready.",
    }.items()
}


def _error(
    status: int, code: str, message: str, details: list[str] | None = None, headers=None
) -> JSONResponse:
    body = ErrorResponse(error=code, message=message, details=details or []).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _contract_error(name: str):
    """Exception classes of contract A (tools.errors), when they exist."""
    import tools.errors as errors

    return getattr(errors, name, None)


def error_for(exc: Exception) -> JSONResponse | None:
    """The HTTP error of an expected failure; ``None`` for a bug (which then propagates as a 500)."""
    guard_blocked, forbidden, conflict = (
        _contract_error(n) for n in ("GuardBlocked", "Forbidden", "Conflict")
    )
    if isinstance(exc, AuthError):
        return _error(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})
    if forbidden and isinstance(exc, forbidden):
        return _error(403, "forbidden", str(exc))
    if isinstance(exc, NotFound):
        return _error(404, "not_found", str(exc))
    if conflict and isinstance(exc, conflict):
        return _error(409, "conflict", str(exc))
    if isinstance(exc, LimitExceeded):
        return _error(413, "too_large", str(exc))
    if guard_blocked and isinstance(exc, guard_blocked):
        return _error(422, "guard_blocked", str(exc), [str(r) for r in getattr(exc, "reasons", [])])
    if isinstance(exc, Unavailable):
        return _error(503, "unavailable", str(exc))
    if isinstance(exc, DatabaseError):
        return _error(503, "database_unavailable", str(exc))
    if isinstance(exc, ToolError):
        return _error(422, "invalid", str(exc))
    return None


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413) — by Content-Length, or while reading."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        message = f"the request body is over the limit of {self.limit:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _error(413, "too_large", message)(scope, receive, send)
        seen = 0

        class _TooLarge(Exception):
            pass

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        started = False

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await _error(413, "too_large", message)(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    panel: bool = True,
    warm_up: bool = False,
    on_ready=None,
) -> FastAPI:
    """The API (and, with ``panel``, the Gradio panel at ``/ui``) around one set of services.

    ``services``: a prepared :class:`Services` (tests pass one with the fake embedding and model).
    ``warm_up``: load the SOP index and the model at start-up (``copilot serve`` does);
    ``on_ready(checks)``: called with the readiness checks once start-up is done.
    """
    apply_offline_defaults()
    services = services or Services(settings or get_settings())
    if warm_up:
        services.begin_warm_up()  # the model and the SOP index load while the app and panel are built

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if warm_up:
            import anyio

            await anyio.to_thread.run_sync(services.wait_warm_up)
        if on_ready is not None:
            import anyio

            on_ready(await anyio.to_thread.run_sync(services.readiness))
        yield
        services.close()

    app = FastAPI(
        title="Fulfillment-exception copilot",
        version="1.0.0",
        description="Triage sales orders, explain exceptions with SOP citations, route actions through "
        "guarded approvals, read the audit log and the KPIs. Bearer token per user.",
        lifespan=lifespan,
        responses={401: ERROR_RESPONSES[401], 422: ERROR_RESPONSES[422], 413: ERROR_RESPONSES[413]},
    )
    app.state.services = services
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            details.append(f"{where}: {err.get('msg')}")
        return _error(422, "invalid", "malformed request: " + "; ".join(details[:5]), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            413: "too_large",
            503: "unavailable",
        }
        return _error(
            exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail), headers=exc.headers
        )

    async def _expected(_request: Request, exc: Exception) -> JSONResponse:
        response = error_for(exc)
        if response is None:  # not one of ours after all: a bug
            raise exc
        return response

    for kind in (ToolError, AuthError, DatabaseError):  # contract A's errors subclass ToolError
        app.add_exception_handler(kind, _expected)

    @app.exception_handler(Exception)
    async def _bug(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette logs the traceback; the client gets JSON without internals.
        return _error(500, "internal", "internal error; the service log has the details")

    from ui.api import routes as api_routes

    api_routes.add_routes(app, services)
    if panel:
        from ui.panel import mount_panel

        mount_panel(app, services)
    return app
