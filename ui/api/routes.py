"""The endpoints of the API. Handlers are plain functions (run in the thread pool, so a slow model
never blocks the event loop); each takes the signed-in principal from :func:`current_user`."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from agent.governance.origin import Origin, set_origin
from agent.telemetry import current_request_id
from tools.domain import ExceptionType
from tools.errors import Forbidden, GuardBlocked
from ui.api.auth import Principal
from ui.api.errors import ERROR_RESPONSES, error_for
from ui.api.events import router as events_router
from ui.api.models import (
    NO_NUL,
    ActionRequestOut,
    ActionRequestPage,
    Anomalies,
    AuditPage,
    ChainCheck,
    ChatAnswer,
    ChatRequest,
    Decision,
    EditDecision,
    ExceptionPage,
    Health,
    KpiReport,
    Me,
    MessageEdit,
    MessageOut,
    MessagePage,
    Monitoring,
    NewActionRequest,
    NewMessage,
    OrderDetail,
    Readiness,
    RejectDecision,
    RiskScores,
    TextTriageRequest,
    TextTriageResponse,
    TriageRequest,
    TriageResponse,
    WhatIf,
    WhatIfRequest,
)
from ui.api.queue import queue_router
from ui.api.service import Services

__all__ = ["AUDIT_EXPORT_ROLES", "add_routes"]

# Who may export the whole audit log (a bulk copy of every decision); everyone signed in may read it.
AUDIT_EXPORT_ROLES = frozenset({"compliance_officer", "ops_manager", "admin"})

_bearer = HTTPBearer(
    auto_error=False, description="A user's API token (`copilot demo` prints the demo users' tokens)."
)
OrderIdPath = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", examples=["SO-100042"])
]
ThreadIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
RequestIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
# a filter value: no PostgreSQL text holds NUL (psycopg refuses it with a DataError: a 500)
ShortStr = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
RequestStatus = Annotated[
    Literal["proposed", "pending_approval", "approved", "rejected", "blocked", "executed", "failed"] | None,
    Query(),
]


def _services(request: Request) -> Services:
    return request.app.state.services


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The signed-in principal; counts the request against their rate limit and makes them the
    origin of every audit event the request appends (async, so the origin reaches the handler)."""
    services = _services(request)
    principal = await run_in_threadpool(
        services.authenticate, credentials.credentials if credentials else None
    )
    services.limits.take(principal.username)
    set_origin(Origin(door="api", user=principal.username, request_id=current_request_id()))
    return principal


ServicesDep = Annotated[Services, Depends(_services)]
User = Annotated[Principal, Depends(current_user)]


def add_routes(app: FastAPI, services: Services) -> None:
    app.include_router(_probes())
    app.include_router(_core(), prefix="/api/v1")
    app.include_router(events_router, prefix="/api/v1")
    app.include_router(queue_router(current_user), prefix="/api/v1")
    app.include_router(_copilot(), prefix="/api/v1")
    app.include_router(_requests(), prefix="/api/v1")
    app.include_router(_messages(), prefix="/api/v1")
    app.include_router(_whatif(), prefix="/api/v1")
    app.include_router(_audit(), prefix="/api/v1")
    app.include_router(_ops(), prefix="/api/v1")


# --- probes -------------------------------------------------------------------------------------


def _probes() -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/health", response_model=Health, summary="Liveness: the process answers.")
    def health() -> Health:
        return Health()

    @r.get(
        "/ready",
        response_model=Readiness,
        summary="Readiness: database at schema head, SOP index, model loaded.",
        responses={503: {"model": Readiness, "description": "Not ready: the failing checks say why."}},
    )
    def ready(services: ServicesDep) -> JSONResponse:
        checks = services.readiness()
        body = Readiness(ready=all(c["ok"] for c in checks.values()), checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    return r


# --- triage, orders, exceptions -------------------------------------------------------------------


def _core() -> APIRouter:
    r = APIRouter(responses={401: ERROR_RESPONSES[401]})

    @r.get("/me", response_model=Me, tags=["auth"], summary="Who the token belongs to, and the role.")
    def me(user: User, services: ServicesDep) -> Me:
        return Me(
            username=user.username,
            role=user.role,
            display_name=user.display_name,
            may_decide_for=services.may_decide_for(user),
            regions=sorted(user.scope.regions),
            warehouses=sorted(user.scope.warehouses),
        )

    @r.post(
        "/triage",
        response_model=TriageResponse,
        tags=["triage"],
        summary="Triage one or many orders: exceptions with evidence, recommendation, alternatives.",
        description="Unknown orders are listed in `not_found` (and as results with `error`); the others are triaged.",
    )
    def triage(body: TriageRequest, user: User, services: ServicesDep) -> TriageResponse:
        if body.explain:
            services.limits.take_model(user.username)
        results = services.triage(user, body.order_ids, explain=body.explain)
        return TriageResponse(results=results, not_found=[r["order_id"] for r in results if r.get("error")])

    @r.get(
        "/orders/{order_id}",
        response_model=OrderDetail,
        tags=["triage"],
        summary="One order with its lines, credit, stock and shipments, and its triage.",
        responses={404: ERROR_RESPONSES[404]},
    )
    def order(order_id: OrderIdPath, user: User, services: ServicesDep) -> OrderDetail:
        return OrderDetail(**services.order_detail(user, order_id))

    @r.get(
        "/exceptions",
        response_model=ExceptionPage,
        tags=["exceptions"],
        summary="Recorded exceptions (the ops store), filtered and paginated, oldest first, with their age.",
    )
    def exceptions(
        user: User,
        services: ServicesDep,
        status: Annotated[Literal["open", "resolved", "any"], Query()] = "open",
        type: Annotated[ExceptionType | None, Query()] = None,
        warehouse_id: ShortStr = None,
        customer_id: ShortStr = None,
        customer_tier: Annotated[Literal["platinum", "gold", "standard"] | None, Query()] = None,
        order_id: ShortStr = None,
        sku: ShortStr = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ExceptionPage:
        return ExceptionPage(
            **services.list_exceptions(
                user,
                status=None if status == "any" else status,
                type=type,
                warehouse_id=warehouse_id,
                customer_id=customer_id,
                customer_tier=customer_tier,
                order_id=order_id,
                sku=sku,
                limit=limit,
                offset=offset,
            )
        )

    return r


# --- the copilot façade: triage, explanations, chat -----------------------------------------------


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    try:
        for event in events:
            yield f"event: {event.get('type', 'message')}\ndata: {json.dumps(event, default=str)}\n\n"
    except Exception as exc:
        response = error_for(exc)
        if response is None:
            raise
        yield f"event: error\ndata: {bytes(response.body).decode()}\n\n"


def _copilot() -> APIRouter:
    r = APIRouter(responses={401: ERROR_RESPONSES[401]})

    @r.post(
        "/triage/text",
        response_model=TextTriageResponse,
        tags=["triage"],
        summary="Triage every order a pasted e-mail or text names; unknown numbers are listed as not found.",
        responses={413: ERROR_RESPONSES[413]},
    )
    def triage_text(body: TextTriageRequest, user: User, services: ServicesDep) -> TextTriageResponse:
        services.limits.take_model(user.username)  # the model reads the customer's request out of the text
        return TextTriageResponse(**services.triage_text(user, body.text, explain=body.explain))

    @r.post(
        "/chat/{thread_id}",
        tags=["chat"],
        response_model=ChatAnswer,
        summary="Ask the copilot in a conversation thread (one per user and thread id).",
        description="With `stream` (default) the answer comes as server-sent events: `progress` (what the "
        'turn is doing, to show until the first words: "Reading the question…", "Looking up SO-…" before '
        'each tool, "Writing the answer…"), `token`, `tool`, `citation`, `proposal`, `request` and a '
        "last `final` event whose data is the whole answer. "
        "An approval request is never filed by one message: an explicit instruction gets a `proposal` "
        '(the action and its parameters, guarded), and the next message "yes" or "confirm" on the '
        "thread files exactly it (`request`); anything else drops it.",
        responses={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "JSON answer, or server-sent events when stream is true.",
            }
        },
    )
    def chat(thread_id: ThreadIdPath, body: ChatRequest, user: User, services: ServicesDep):
        services.limits.take_model(user.username)
        thread = f"{user.username}:{thread_id}"  # a thread belongs to one user
        if body.stream:
            return StreamingResponse(
                _sse(services.chat_stream(thread, body.message, user)),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        return ChatAnswer(**services.chat(thread, body.message, user))

    return r


# --- action requests and decisions -----------------------------------------------------------


def _requests() -> APIRouter:
    r = APIRouter(
        prefix="/requests",
        tags=["approvals"],
        responses={401: ERROR_RESPONSES[401], 404: ERROR_RESPONSES[404]},
    )

    @r.get("", response_model=ActionRequestPage, summary="Action requests, filtered and paginated.")
    def list_requests(
        user: User,
        services: ServicesDep,
        status: RequestStatus = None,
        role: ShortStr = None,
        order_id: ShortStr = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> ActionRequestPage:
        items = services.list_requests(
            user, status=status, role=role, order_id=order_id, limit=limit, offset=offset
        )
        return ActionRequestPage(items=items, limit=limit, offset=offset)

    @r.get(
        "/queue",
        response_model=ActionRequestPage,
        summary="The pending requests the signed-in user's role may decide (its own and its delegates').",
    )
    def queue(user: User, services: ServicesDep, limit: Limit = 100) -> ActionRequestPage:
        return ActionRequestPage(items=services.queue(user, limit=limit), limit=limit, offset=0)

    @r.post(
        "",
        response_model=ActionRequestOut,
        status_code=201,
        summary="Request an action for an order (default: its recommendation); the guard checks it.",
        description=(
            "201 with the new request; 200 with the request already waiting (proposed, pending or "
            "approved, not yet run) when the same action with the same parameters was asked for on "
            "the order before by the same user: a retry files nothing new (`repeated: true`); "
            "another user asking for it gets 409 naming that request."
        ),
        responses={
            200: {
                "model": ActionRequestOut,
                "description": "The same request already waiting: nothing filed.",
            },
            409: ERROR_RESPONSES[409],
            422: ERROR_RESPONSES[422],
        },
    )
    def request_action(
        body: NewActionRequest, user: User, services: ServicesDep, response: Response
    ) -> ActionRequestOut:
        filed = services.request_action(
            user,
            order_id=body.order_id,
            action=body.action,
            params=body.params,
            citations=body.citations,
            thread_id=body.thread_id,
        )
        if filed["status"] == "blocked":
            # refused like every other guard refusal (422, the reasons in details); the request is
            # kept, blocked with its reasons, for people to see what was tried
            reasons = list((filed.get("guard") or {}).get("reasons") or [])
            raise GuardBlocked(
                reasons, f"request {filed['id']} is blocked by the guard: " + "; ".join(reasons)
            )
        if filed.get("repeated"):  # the same action and parameters already wait: that one, nothing filed
            response.status_code = 200
        return ActionRequestOut(**filed)

    @r.get(
        "/{request_id}", response_model=ActionRequestOut, summary="One action request with its guard result."
    )
    def get_request(request_id: RequestIdPath, user: User, services: ServicesDep) -> ActionRequestOut:
        return ActionRequestOut(**services.get_request(user, request_id))

    decided: dict[int | str, dict[str, Any]] = {
        403: ERROR_RESPONSES[403],
        409: ERROR_RESPONSES[409],
        422: ERROR_RESPONSES[422],
    }

    @r.post(
        "/{request_id}/approve",
        response_model=ActionRequestOut,
        responses=decided,
        summary="Approve as the signed-in user; the action executes once, in one transaction.",
    )
    def approve(
        request_id: RequestIdPath, user: User, services: ServicesDep, body: Decision | None = None
    ) -> ActionRequestOut:
        return ActionRequestOut(
            **services.decide(user, request_id, "approve", reason=body.reason if body else None)
        )

    @r.post(
        "/{request_id}/reject",
        response_model=ActionRequestOut,
        responses=decided,
        summary="Reject with a reason.",
    )
    def reject(
        request_id: RequestIdPath, body: RejectDecision, user: User, services: ServicesDep
    ) -> ActionRequestOut:
        return ActionRequestOut(**services.decide(user, request_id, "reject", reason=body.reason))

    @r.post(
        "/{request_id}/edit",
        response_model=ActionRequestOut,
        responses=decided,
        summary="Change the parameters (checked by the guard again) and approve them, with a reason.",
    )
    def edit(
        request_id: RequestIdPath, body: EditDecision, user: User, services: ServicesDep
    ) -> ActionRequestOut:
        return ActionRequestOut(
            **services.decide(user, request_id, "edit", reason=body.reason, params=body.params)
        )

    return r


def _whatif() -> APIRouter:
    r = APIRouter(tags=["approvals"], responses={401: ERROR_RESPONSES[401], 404: ERROR_RESPONSES[404]})

    @r.post(
        "/whatif",
        response_model=WhatIf,
        summary="What an action (default: the order's recommendation) would do to the other open orders; "
        "simulated in a transaction that is rolled back.",
        responses={409: ERROR_RESPONSES[409], 422: ERROR_RESPONSES[422]},
    )
    def whatif(body: WhatIfRequest, user: User, services: ServicesDep) -> WhatIf:
        return WhatIf(**services.whatif(user, order_id=body.order_id, action=body.action, params=body.params))

    return r


# --- the audit log ------------------------------------------------------------------------------


def _messages() -> APIRouter:
    r = APIRouter(
        prefix="/messages",
        tags=["messages"],
        responses={401: ERROR_RESPONSES[401], 404: ERROR_RESPONSES[404]},
    )

    @r.get("", response_model=MessagePage, summary="Customer notices and supplier requests, newest first.")
    def list_messages(
        user: User,
        services: ServicesDep,
        order_id: ShortStr = None,
        status: ShortStr = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> MessagePage:
        items = services.list_messages(user, order_id=order_id, status=status, limit=limit, offset=offset)
        return MessagePage(items=items, limit=limit, offset=offset)

    @r.get(
        "/{message_id}", response_model=MessageOut, summary="One message: facts, draft, request, delivery."
    )
    def get_message(message_id: RequestIdPath, user: User, services: ServicesDep) -> MessageOut:
        return MessageOut(**services.get_message(user, message_id))

    @r.post(
        "",
        response_model=MessageOut,
        status_code=201,
        summary="Ask for a note to the order's customer: drafted from the facts, filed for approval.",
        responses={403: ERROR_RESPONSES[403], 422: ERROR_RESPONSES[422]},
    )
    def ask(body: NewMessage, user: User, services: ServicesDep) -> MessageOut:
        return MessageOut(**services.ask_notice(user, body.order_id))

    @r.post(
        "/{message_id}/edit",
        response_model=MessageOut,
        summary="Approve the message with an edited subject and/or body, checked against its facts again.",
        responses={403: ERROR_RESPONSES[403], 409: ERROR_RESPONSES[409], 422: ERROR_RESPONSES[422]},
    )
    def edit(message_id: RequestIdPath, body: MessageEdit, user: User, services: ServicesDep) -> MessageOut:
        return MessageOut(**services.edit_message(user, message_id, body))

    return r


def _audit() -> APIRouter:
    r = APIRouter(prefix="/audit", tags=["audit"], responses={401: ERROR_RESPONSES[401]})

    @r.get("", response_model=AuditPage, summary="Audit events in chain order (seq), filtered and paginated.")
    def events(
        user: User,
        services: ServicesDep,
        order_id: ShortStr = None,
        request_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        event_type: ShortStr = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> AuditPage:
        items = services.audit_events(
            user, order_id=order_id, request_id=request_id, event_type=event_type, limit=limit, offset=offset
        )
        return AuditPage(items=items, limit=limit, offset=offset)

    @r.get(
        "/verify",
        response_model=ChainCheck,
        summary="Recompute the hash chain; the first broken link if any.",
    )
    def verify(user: User, services: ServicesDep) -> ChainCheck:
        return ChainCheck(**services.verify_chain())

    @r.get(
        "/export",
        summary="The whole audit log as JSON Lines or CSV (compliance_officer, ops_manager, admin; "
        "not for a user limited to some sites).",
        response_class=FileResponse,
        responses={
            403: ERROR_RESPONSES[403],
            200: {
                "content": {"application/x-ndjson": {}, "text/csv": {}},
                "description": "The events, oldest first.",
            },
        },
    )
    def export(
        user: User, services: ServicesDep, format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl"
    ) -> FileResponse:
        if user.role not in AUDIT_EXPORT_ROLES:
            raise Forbidden(
                f"role {user.role} may not export the audit log (allowed: "
                f"{', '.join(sorted(AUDIT_EXPORT_ROLES))})"
            )
        services.check_audit_export(user)
        tmp = tempfile.NamedTemporaryFile(
            "w", suffix=f".{format}", delete=False, encoding="utf-8", newline=""
        )
        with tmp:
            services.export_audit(user, format, tmp)
        return FileResponse(
            tmp.name,
            media_type="application/x-ndjson" if format == "jsonl" else "text/csv",
            filename=f"audit.{format}",
            background=BackgroundTask(os.unlink, tmp.name),
        )

    return r


# --- operations analytics ---------------------------------------------------------------------


def _ops() -> APIRouter:
    r = APIRouter(tags=["kpis"], responses={401: ERROR_RESPONSES[401]})

    @r.get(
        "/kpis",
        response_model=KpiReport,
        summary="Exception KPIs: counts by type, warehouse and tier, "
        "aging, recommendation acceptance and override rates.",
    )
    def kpis(
        user: User,
        services: ServicesDep,
        since: Annotated[dt.date | None, Query(description="Only from this day on (YYYY-MM-DD).")] = None,
    ) -> KpiReport:
        return KpiReport(kpis=services.kpis(user, since))

    @r.get(
        "/anomalies",
        response_model=Anomalies,
        summary="Recurring exception patterns (type × SKU, customer, warehouse or supplier), most costly "
        "first, each with a process-redesign suggestion.",
    )
    def anomalies(user: User, services: ServicesDep) -> Anomalies:
        return Anomalies(items=services.anomalies(user))

    @r.get(
        "/risk",
        response_model=RiskScores,
        summary="Open orders most likely to fail before release.",
        responses={503: ERROR_RESPONSES[503]},
    )
    def risk(user: User, services: ServicesDep, top: Annotated[int, Query(ge=1, le=500)] = 20) -> RiskScores:
        return RiskScores(items=services.risk_scores(user, top))

    @r.get(
        "/monitoring",
        response_model=Monitoring,
        summary="Model monitoring: drift (PSI) of the risk model's inputs since training, and the override "
        "rate of recommendations by action type, with the warnings past their thresholds.",
        description="Without a trained risk model, `drift.status` is `no_model` (its reason names "
        "`copilot risk train`) and the override rates are still reported.",
    )
    def monitoring(user: User, services: ServicesDep) -> Monitoring:
        return Monitoring(**services.monitoring())

    return r
