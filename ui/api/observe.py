"""Operating the service: the request id and latency of every HTTP request, and ``/metrics``.

``RequestContext`` (pure ASGI, so the context variable reaches the handlers and their threads) takes
the caller's ``X-Request-ID`` or makes one, returns it on the response, and observes the request's
latency by route template. ``/metrics`` answers in the Prometheus text format: the process
metrics of ``agent.telemetry`` (summed over all ``serve --workers`` processes in multiprocess mode)
and, read from the database at scrape time, the work waiting: open exceptions and breached SLAs per
owner role, approvals pending per approver role, the event inbox and its lag, the outbox.

Who may read it: a loopback client (a Prometheus beside the process, or a sidecar), or anyone with
``Authorization: Bearer <COPILOT_METRICS_TOKEN>``; nobody else (the figures describe the business).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from agent.flow.queue import queue_sizes
from agent.telemetry import HTTP_SECONDS, new_request_id, reset_request_id, set_request_id
from tools.models import ActionRequest, EventInbox, OutboxMessage
from ui.api.errors import error_response

__all__ = ["RequestContext", "metrics_router"]

log = logging.getLogger("copilot.api")
access = logging.getLogger("copilot.access")

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class RequestContext:
    """X-Request-ID in and out, the request id in context, latency by route template."""

    def __init__(self, app, collapse: tuple[str, ...] = ()) -> None:
        self.app, self.collapse = app, collapse

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        offered = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        request_id = new_request_id(offered)
        token = set_request_id(request_id)
        status = {"code": 500}
        started = time.perf_counter()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            template = _template(scope, self.collapse)
            method = scope.get("method", "GET")
            HTTP_SECONDS.labels(template, method, str(status["code"])).observe(seconds)
            # The access line is written here, inside the request's context, so it carries the id
            # (uvicorn's own access log runs outside it and is off). Path only: no query string.
            access.info("%s %s %s %.1f ms", method, scope.get("path", ""), status["code"], seconds * 1000)
            reset_request_id(token)


def _template(scope, collapse: tuple[str, ...]) -> str:
    """The route's template, not the path: ``/api/v1/requests/{request_id}`` for every request id,
    one label for everything under a collapsed prefix (the panel), ``unmatched`` when no route
    matched — so the metric's label values stay few whatever clients send."""
    path = scope.get("path", "")
    for prefix in collapse:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix
    if scope.get("route") is None:
        return "unmatched"
    params = scope.get("path_params") or {}
    if params:
        names = {str(value): name for name, value in params.items()}
        path = "/".join("{" + names[part] + "}" if part in names else part for part in path.split("/"))
    return path


class _WorkWaiting:
    """The database's view at scrape time: one short read transaction per scrape."""

    def __init__(self, services) -> None:
        self.services = services

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "copilot_database_up", "Whether the scrape could read the database (1) or not (0)."
        )
        try:
            families = self._read()
        except Exception as exc:  # the scrape must still answer: say the database is down
            log.warning(
                "metrics: cannot read the database: %s", str(exc).splitlines()[0] if str(exc) else exc
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        now = dt.datetime.now(dt.UTC)
        with self.services.factory() as session:
            sizes = queue_sizes(session, self.services.policy, now)
            pending = session.execute(
                select(ActionRequest.approver_role, func.count())
                .where(ActionRequest.status == "pending_approval")
                .group_by(ActionRequest.approver_role)
            ).all()
            inbox = session.execute(select(EventInbox.status, func.count()).group_by(EventInbox.status)).all()
            oldest = session.execute(
                select(func.min(EventInbox.received_at)).where(EventInbox.status == "received")
            ).scalar()
            outbox = session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ).all()
            session.rollback()
        open_ = GaugeMetricFamily(
            "copilot_queue_open_exceptions", "Open exceptions per owner role.", labels=["role"]
        )
        breached = GaugeMetricFamily(
            "copilot_queue_sla_breached", "Open exceptions past their SLA per owner role.", labels=["role"]
        )
        for role, row in sizes.items():
            open_.add_metric([role], row["open"])
            breached.add_metric([role], row["sla_breached"])
        approvals = GaugeMetricFamily(
            "copilot_approvals_pending", "Requests waiting for a decision per approver role.", labels=["role"]
        )
        for role, count in pending:
            approvals.add_metric([role], count)
        events = GaugeMetricFamily("copilot_events", "Events in the inbox by status.", labels=["status"])
        counts = dict(inbox)
        for status in ("received", "applied", "failed"):
            events.add_metric([status], counts.get(status, 0))
        lag = GaugeMetricFamily(
            "copilot_event_lag_seconds",
            "Age of the oldest event received and not yet applied (0: none waits).",
        )
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        lag.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        messages = GaugeMetricFamily(
            "copilot_outbox_messages", "Outbox messages by status.", labels=["status"]
        )
        for status, count in outbox:
            messages.add_metric([status], count)
        return [open_, breached, approvals, events, lag, messages]


def _allowed(request: Request, token: str) -> bool:
    if token:
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    client = request.client.host if request.client else ""
    return client in _LOOPBACK


def metrics_router(services) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    waiting = CollectorRegistry(auto_describe=True)
    waiting.register(_WorkWaiting(services))

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        if not _allowed(request, services.settings.metrics_token):
            return error_response(
                403,
                "forbidden",
                "/metrics answers loopback clients, or a bearer token equal to COPILOT_METRICS_TOKEN",
            )
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            process: Any = CollectorRegistry()
            MultiProcessCollector(process)
        else:
            process = REGISTRY
        body = generate_latest(process) + generate_latest(waiting)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
