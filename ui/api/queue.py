"""Role work queues over HTTP: ``GET /api/v1/queue`` (the signed-in role's queue and those of the
roles it covers, by priority, with the recommendation) and claim / release / reassign (audited).

To request the recommended action, post it to ``/api/v1/requests`` like any other request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from agent.flow import claim, load_queue, queue_sizes, reassign, release
from ui.api.auth import Principal
from ui.api.errors import ERROR_RESPONSES
from ui.api.models import NO_NUL

__all__ = ["queue_router"]

ExceptionIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Recommendation(BaseModel):
    action: str
    params: dict[str, Any]
    risk: str | None = None
    approver_role: str | None = None
    reason: str | None = None


class QueueItem(BaseModel):
    id: int
    order_id: str
    type: str
    instance: str
    line_no: int | None = None
    shipment_id: str | None = None
    evidence: list[str]
    owner_role: str
    escalated_to: str | None = None
    escalated_at: dt.datetime | None = None
    claimed_by: str | None = None
    claimed_at: dt.datetime | None = None
    first_seen_at: dt.datetime
    sla_due_at: dt.datetime
    sla_breached: bool
    priority: float = Field(
        description="0-100: urgency (promise date, SLA used) and impact (value, tier, waiting)."
    )
    customer_id: str | None = None
    customer_name: str | None = None
    customer_tier: str | None = None
    promised_date: dt.date | None = None
    order_value: Decimal
    waiting: int
    recommendation: Recommendation | None = None


class QueueSize(BaseModel):
    open: int
    sla_breached: int
    escalated: int
    claimed: int


class Queue(BaseModel):
    role: str
    covers: list[str]
    sizes: dict[str, QueueSize]
    items: list[QueueItem]


class Reassign(BaseModel):
    to_role: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class QueueChange(BaseModel):
    id: int
    claimed_by: str | None = None
    owner_role: str | None = None


def queue_router(current_user: Callable[..., Any]) -> APIRouter:
    """The router, with the API's bearer-token dependency (passed in: the routes module owns it)."""
    r = APIRouter(prefix="/queue", tags=["queue"], responses={k: ERROR_RESPONSES[k] for k in (403, 404, 409)})
    signed_in = Depends(current_user)

    @r.get(
        "", response_model=Queue, summary="My work queue: open exceptions of my role (and those it covers)."
    )
    def my_queue(
        request: Request, user: Principal = signed_in, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> Queue:
        services = request.app.state.services
        with services.factory_for(user)() as session:  # a scoped user: their sites' exceptions
            items = load_queue(session, services.policy, role=user.role, limit=limit)
            sizes = queue_sizes(session, services.policy)
            session.rollback()
        covers = sorted(services.policy.delegates(user.role))
        return Queue(
            role=user.role, covers=covers, sizes={k: v for k, v in sizes.items() if k in covers}, items=items
        )

    def _change(request: Request, fn, exception_id: int, user: Principal, **kw) -> QueueChange:
        services = request.app.state.services
        with services.factory_for(user)() as session:  # another site's exception: not found
            out = fn(session, services.policy, exception_id, user=user.username, role=user.role, **kw)
            session.commit()
        return QueueChange(**out)

    @r.post(
        "/{exception_id}/claim", response_model=QueueChange, summary="Take an exception: I work on it now."
    )
    async def claim_item(
        request: Request, exception_id: ExceptionIdPath, user: Principal = signed_in
    ) -> QueueChange:
        return await run_in_threadpool(_change, request, claim, exception_id, user)

    @r.post("/{exception_id}/release", response_model=QueueChange, summary="Give a claimed exception back.")
    async def release_item(
        request: Request, exception_id: ExceptionIdPath, user: Principal = signed_in
    ) -> QueueChange:
        return await run_in_threadpool(_change, request, release, exception_id, user)

    @r.post(
        "/{exception_id}/reassign", response_model=QueueChange, summary="Move it to another role's queue."
    )
    async def reassign_item(
        request: Request, exception_id: ExceptionIdPath, body: Reassign, user: Principal = signed_in
    ) -> QueueChange:
        return await run_in_threadpool(
            _change, request, reassign, exception_id, user, to_role=body.to_role, reason=body.reason
        )

    return r
