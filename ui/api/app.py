"""The JSON API: a FastAPI app with the endpoints under ``/api/v1``, ``/health`` and ``/ready``.

``create_api(settings=None)`` builds one app around one :class:`ui.api.service.Services`
(``ui.server.create_app`` adds the panel at ``/ui``).
Every endpoint but ``/health`` and ``/ready`` needs a bearer token (``ui.api.auth``); the routes are in
``ui.api.routes``, the JSON errors in ``ui.api.errors``, the work behind both in ``ui.api.service``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.settings import Settings, apply_offline_defaults, get_settings
from tools.db import DatabaseError
from tools.errors import ToolError
from ui.api.auth import AuthError, TokenConfigError
from ui.api.errors import ERROR_RESPONSES, error_for, error_response
from ui.api.events import event_worker
from ui.api.limits import RateLimited
from ui.api.models import MAX_BODY_BYTES
from ui.api.observe import RequestContext, metrics_router
from ui.api.routes import add_routes
from ui.api.service import Services

__all__ = ["create_api"]

log = logging.getLogger("copilot.api")


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
                    return await error_response(413, "too_large", message)(scope, receive, send)
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
                await error_response(413, "too_large", message)(scope, receive, send)


def create_api(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    warm_up: bool = False,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    mounted: tuple[str, ...] = (),
) -> FastAPI:
    """The API around one set of services.

    ``mounted``: path prefixes another app will be mounted at (the panel): their requests are
    measured under the prefix alone.
    ``services``: a prepared :class:`Services` (tests pass one with the fake embedding and model).
    ``warm_up``: load the SOP index and the model at start-up and run the communications worker
    (``copilot serve`` does);
    ``on_ready(checks)``: called with the readiness checks once start-up is done.
    """
    apply_offline_defaults()
    services = services or Services(settings or get_settings())
    if warm_up:
        services.begin_warm_up()  # the model and the SOP index load while the app and panel are built

    worker = event_worker(services)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if worker is not None:  # applies stored events beside the API (the embedded default)
            worker.start()
        if warm_up:
            await anyio.to_thread.run_sync(services.wait_warm_up)
        if on_ready is not None:
            on_ready(await anyio.to_thread.run_sync(services.readiness))
        if warm_up:
            # a part that failed to load is tried again in the background; /ready says how it goes
            services.begin_warm_up_retries(on_ready)
            services.start_comms_worker()  # drafts due notices, delivers approved messages
            services.start_recovery()  # carries on requests a crashed process left half-way
            services.start_keeping_heads()  # explanation prompt heads evaluated once, while idle
            services.start_preexplainer()  # explains the top of the queues while the model is idle
        yield
        if worker is not None:
            worker.stop()
        services.close()

    app = FastAPI(
        title="Fulfillment-exception copilot",
        version="1.0.0",
        description="Triage sales orders, explain exceptions with SOP citations, route actions through "
        "guarded approvals, read the audit log and the KPIs. Bearer token per user.",
        lifespan=lifespan,
        responses={
            401: ERROR_RESPONSES[401],
            422: ERROR_RESPONSES[422],
            413: ERROR_RESPONSES[413],
            429: ERROR_RESPONSES[429],
        },
    )
    app.state.services = services
    app.state.event_worker = worker
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(
        RequestContext, collapse=mounted
    )  # outermost: every answer, a refused body too, has its id

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            details.append(f"{where}: {err.get('msg')}")
        return error_response(422, "invalid", "malformed request: " + "; ".join(details[:5]), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if (
            exc.status_code == 400
        ):  # a body FastAPI cannot parse (e.g. JSON nested too deeply): malformed input
            return error_response(422, "invalid", f"malformed request: {exc.detail}", ["body"])
        codes = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            413: "too_large",
            503: "unavailable",
        }
        return error_response(
            exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail), headers=exc.headers
        )

    async def _expected(_request: Request, exc: Exception) -> JSONResponse:
        response = error_for(exc)
        if response is None:  # not one of ours after all: a bug
            raise exc
        return response

    # The business errors all subclass ToolError; a rate limit is the door's own.
    for kind in (ToolError, AuthError, TokenConfigError, DatabaseError, OperationalError, RateLimited):
        app.add_exception_handler(kind, _expected)

    @app.exception_handler(Exception)
    async def _bug(_request: Request, _exc: Exception) -> JSONResponse:
        # Starlette logs the traceback; the client gets JSON without internals.
        return error_response(500, "internal", "internal error; the service log has the details")

    add_routes(app, services)
    app.include_router(metrics_router(services))
    return app
