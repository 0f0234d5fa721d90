"""Triage one order: detect its exceptions, plan the next-best actions, record the exceptions.

The result is a plain dictionary in the shape `copilot triage --json` prints (issue 3):
``{"order_id", "exceptions": [{"type", "evidence": [...]}], "recommendation": {...} | null,
"alternatives": [...]}`` plus the whole plan and the facts the records lack. Recording upserts
the exceptions table so that aging and recurrence can be computed: an unchanged order changes
nothing; an exception no longer found is resolved; one found again is reopened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.detection import Detected, OrderContext, OrderNotFound, detect, load_context
from agent.policy import Policy
from agent.recommend import Plan, load_planning_facts, plan_order
from tools.models import ExceptionRecord

__all__ = ["triage_order", "record_exceptions", "triage_result", "OrderNotFound"]


def _evidence_hash(d: Detected) -> str:
    body = json.dumps({"evidence": list(d.evidence), "facts": dict(d.facts)}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def record_exceptions(session: Session, ctx: OrderContext, found: list[Detected], *, now: dt.datetime | None = None) -> int:
    """Upsert ``found`` for the order; resolve what is no longer found. Returns rows written."""
    now = now or dt.datetime.now(dt.UTC)
    order = ctx.order
    existing = {
        (r.type, r.instance_key): r
        for r in session.scalars(select(ExceptionRecord).where(ExceptionRecord.order_id == order.order_id))
    }
    written = 0
    for d in found:
        digest = _evidence_hash(d)
        row = existing.pop((d.type, d.instance_key), None)
        if row is None:
            session.add(ExceptionRecord(
                order_id=order.order_id, type=d.type, instance_key=d.instance_key, line_no=d.line_no,
                shipment_id=d.shipment_id, sku=d.sku, customer_id=order.customer_id, warehouse_id=d.warehouse_id,
                evidence=list(d.evidence), evidence_hash=digest, status="open", first_seen_at=now, detected_at=now,
            ))
            written += 1
        elif row.status != "open" or row.evidence_hash != digest:
            if row.status != "open":  # found again after it was resolved: a new episode
                row.first_seen_at, row.resolved_at = now, None
            row.status, row.evidence, row.evidence_hash, row.detected_at = "open", list(d.evidence), digest, now
            written += 1
    for row in existing.values():
        if row.status == "open":
            row.status, row.resolved_at = "resolved", now
            written += 1
    return written


def triage_result(ctx: OrderContext, found: list[Detected], plan: Plan) -> dict[str, Any]:
    rec = plan.recommendation
    return {
        "order_id": ctx.order.order_id,
        "status": ctx.order.status,
        "exceptions": [
            {"type": i.exception.type, "instance": i.exception.instance_key, "line_no": i.exception.line_no,
             "shipment_id": i.exception.shipment_id, "evidence": list(i.exception.evidence)}
            for i in plan.instances
        ],
        "recommendation": rec.as_dict() if rec else None,
        "alternatives": [o.as_dict() for o in plan.alternatives],
        "plan": [o.as_dict() for o in plan.actions],
        "options": [
            {"type": i.exception.type, "instance": i.exception.instance_key,
             "candidates": [{"action": o.action, "feasible": o.feasible, "reason": o.reason,
                             **({"params": dict(o.params)} if o.feasible else {})} for o in i.options]}
            for i in plan.instances
        ],
        "missing": list(ctx.missing),
    }


def triage_order(session: Session, order_id: str, policy: Policy, *, record: bool = True) -> dict[str, Any]:
    """Triage one order; raises :class:`OrderNotFound`. With ``record``, upserts its exceptions."""
    ctx = load_context(session, order_id, policy)
    found = detect(ctx, policy)
    plan = plan_order(ctx, found, load_planning_facts(session, ctx), policy)
    if record:
        record_exceptions(session, ctx, found)
    return triage_result(ctx, found, plan)
