"""``POST /api/v1/events``: source systems report changes (domain.md §8), signed per source.

Not a bearer-token endpoint: ERP, WMS and TMS sign each request with their own secret
(:mod:`tools.events.signing`; 401 when the signature, source or timestamp window is wrong). The
body is one event or a list of them, every event of the signing source. All are checked first —
unknown table or field, wrong type, dangling key: 422 naming the event and the path, nothing
stored — then stored in one transaction and answered 202 once committed; a repeated event_id is
acknowledged and counted as a duplicate. The worker applies them (inside ``copilot serve`` on the
embedded default, :func:`event_worker`), so the answer does not wait for triage.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from agent.flow import BackgroundWorker
from tools.db import is_postgres
from tools.events import Event, EventError, dangling_before, parse_event, receive
from tools.events.signing import HEADER_SIGNATURE, HEADER_SOURCE, HEADER_TIMESTAMP, SignatureError, verify
from ui.api.errors import error_response
from ui.api.models import ErrorResponse
from ui.api.service import Services

__all__ = ["event_worker", "router"]

router = APIRouter(tags=["events"])


class EventsAccepted(BaseModel):
    stored: int
    duplicates: int


def _error(status: int, code: str, message: str, details: list[str] | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "HMAC-SHA256"} if status == 401 else None
    return error_response(status, code, message, details, headers=headers)


@router.post(
    "/events",
    status_code=202,
    response_model=EventsAccepted,
    summary="Report changes from ERP/WMS/TMS: one event or a list, signed by the source (HMAC-SHA256).",
    responses={
        401: {"model": ErrorResponse, "description": "Unsigned, unknown source, bad signature or stale."},
        422: {"model": ErrorResponse, "description": "A bad event; the message names it and the path."},
        503: {"model": ErrorResponse, "description": "Nothing stored (the database is busy); retry."},
    },
)
async def post_events(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    settings = services.settings
    body = await request.body()
    h = request.headers
    try:
        source = verify(
            settings.event_secret_map(),
            h.get(HEADER_SOURCE),
            h.get(HEADER_TIMESTAMP),
            h.get(HEADER_SIGNATURE),
            body,
            window_s=settings.event_window_s,
        )
    except SignatureError as exc:
        return _error(401, "unauthorized", str(exc))
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(422, "invalid_event", f"the body is not JSON: {exc}", ["body"])
    except RecursionError:
        return _error(422, "invalid_event", "the body is not an event: JSON nested too deeply", ["body"])
    batch = isinstance(payload, list)
    raws = payload if batch else [payload]
    parsed: list[tuple[int, Event]] = []
    bad: tuple[int, EventError] | None = None  # the first event that does not parse
    for i, raw in enumerate(raws):
        try:
            e = parse_event(raw, f"[{i}]" if batch else "")
            if e.source != source:
                where = f"[{i}].source" if batch else "source"
                raise EventError(where, f"signed by source {source!r}, not {e.source!r}", event=e.label)
            parsed.append((i, e))
        except EventError as exc:
            bad = bad or (i, exc)
    if bad is not None:
        # named in the batch's order: a dangling reference of an earlier event comes first
        found: tuple[int, EventError] = bad

        def first() -> tuple[int, EventError]:
            with services.factory() as session:
                return dangling_before(session, parsed, found[0]) or found

        if parsed:
            try:
                found = await run_in_threadpool(first)
            except OperationalError:
                pass  # the database is busy: the malformed event is still a reason to refuse
        return _error(422, "invalid_event", str(found[1]), [found[1].path])
    events = [e for _, e in parsed]
    if not events:
        return _error(422, "invalid_event", "an empty list: send at least one event", ["body"])

    def store() -> tuple[int, int]:
        with services.factory() as session:
            counts = receive(session, events, channel="api")
            session.commit()
        return counts

    try:
        stored, duplicates = await run_in_threadpool(store)
    except OperationalError:  # the database is busy (SQLite's one writer) or away: nothing stored
        return error_response(
            503, "unavailable", "the inbox cannot store events right now; retry", headers={"Retry-After": "5"}
        )
    except EventError as exc:  # a dangling key; the path carries the event's place in the batch
        return _error(422, "invalid_event", str(exc), [exc.path])
    worker = getattr(request.app.state, "event_worker", None)
    if worker is not None:
        worker.wake()
    return JSONResponse(EventsAccepted(stored=stored, duplicates=duplicates).model_dump(), status_code=202)


def event_worker(services: Services) -> BackgroundWorker | None:
    """The worker ``copilot serve`` runs beside the API: on for SQLite under ``auto``."""
    mode = services.settings.event_worker
    if mode == "off" or (mode == "auto" and is_postgres(services.engine)):
        return None
    return BackgroundWorker(services.factory, services.policy)
