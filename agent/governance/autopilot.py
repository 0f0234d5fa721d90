"""Policy auto-approval by rule, its shadow mode and the kill switch, and how often people agreed.

A rule of the policy's ``autopilot`` section matches a guarded request of its action at its risk
when every condition holds on the records now (never high risk, never COMPLIANCE_REVIEW: the policy
loader refuses such rules). ``mode: live``: the approval step approves it as user ``policy``, executed
once and audited like any decision. ``mode: shadow``: an ``autopilot_shadow`` audit event records
what it would have approved, and the request waits for a person; :func:`autopilot_report` compares
the people's first decision with it, per rule, so an operator can switch a rule on with evidence.
The kill switch — ``autopilot.enabled: false`` in the policy, or ``COPILOT_AUTOPILOT=off`` in the
environment — turns every automation off at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.governance import audit
from agent.policy import AutopilotRule, Policy
from agent.settings import get_settings
from tools.models import ActionRequest, Approval, AuditEvent, Item, Order, OrderLine, Substitute, Warehouse
from tools.sites import order_condition

__all__ = ["autopilot_on", "autopilot_report", "matching_rule"]

EVENT_AUTOPILOT_SHADOW = audit.EVENT_AUTOPILOT_SHADOW


def autopilot_on(policy: Policy) -> bool:
    """False when the kill switch is thrown (policy or COPILOT_AUTOPILOT=off)."""
    return policy.autopilot.enabled and get_settings().autopilot == "on"


def _line(session: Session, params: dict[str, Any]) -> tuple[OrderLine, Order] | None:
    line = session.get(OrderLine, (params.get("order_id"), params.get("line_no")))
    order = session.get(Order, params.get("order_id"))
    return (line, order) if line is not None and order is not None else None


def _holds(session: Session, condition: str, rule: AutopilotRule, params: dict[str, Any]) -> bool:
    found = _line(session, params)
    if found is None:
        return False
    line, order = found
    if condition == "same_region":
        here = session.get(Warehouse, line.warehouse_id or order.warehouse_id)
        there = session.get(Warehouse, params.get("to_warehouse_id"))
        return bool(here and there and here.region and here.region == there.region)
    if condition == "approved_substitute_no_higher_price":
        sub = session.get(Substitute, (line.sku, params.get("substitute_sku")))
        item = session.get(Item, params.get("substitute_sku"))
        return bool(sub and sub.approved and item and item.list_price <= line.unit_price)
    if condition == "amount_within":
        new = Decimal(str(params.get("new_unit_price")))
        return rule.max_amount is not None and abs(new - line.unit_price) * line.qty <= rule.max_amount
    return False


def matching_rule(
    session: Session, policy: Policy, action: str, risk: str, params: dict[str, Any]
) -> AutopilotRule | None:
    """The first autopilot rule that would approve this request now; None when none (or switched off)."""
    if not autopilot_on(policy) or risk not in ("low", "medium") or policy.spec(action).never_auto_approve:
        return None
    for rule in policy.autopilot.rules:
        if (
            rule.action == action
            and rule.risk == risk
            and all(_holds(session, c, rule, params) for c in rule.when)
        ):
            return rule
    return None


def autopilot_report(session: Session, policy: Policy) -> dict[str, Any]:
    """Per rule: requests it matched in shadow, how people decided them, and how many it approved."""
    rules: dict[str, dict[str, Any]] = {
        r.name: {
            "action": r.action,
            "risk": r.risk,
            "mode": r.mode,
            "shadow": 0,
            "decided": 0,
            "agreed": 0,
            "disagreed": 0,
            "pending": 0,
            "auto_approved": 0,
        }
        for r in policy.autopilot.rules
    }
    shadows = session.execute(
        select(AuditEvent.request_id, AuditEvent.payload).where(
            AuditEvent.event_type == EVENT_AUTOPILOT_SHADOW,
            order_condition(session, AuditEvent.order_id),  # a scoped user: their sites' requests
        )
    ).all()
    for request_id, payload in shadows:
        row = rules.setdefault(
            payload.get("rule"),
            {"shadow": 0, "decided": 0, "agreed": 0, "disagreed": 0, "pending": 0, "auto_approved": 0},
        )
        row["shadow"] += 1
        first = session.scalars(
            select(Approval).where(Approval.request_id == request_id).order_by(Approval.id).limit(1)
        ).first()
        if first is None:
            row["pending"] += 1
            continue
        row["decided"] += 1
        req = session.get(ActionRequest, request_id)
        same = (
            first.decision == "approve"
            and req is not None
            and first.params_hash == payload.get("params_hash")
        )
        row["agreed" if same else "disagreed"] += 1
    for payload in session.scalars(
        select(AuditEvent.payload).where(
            AuditEvent.event_type == audit.EVENT_DECISION,
            AuditEvent.actor == "policy",
            order_condition(session, AuditEvent.order_id),
        )
    ):
        name = (payload or {}).get("rule")
        if name in rules:
            rules[name]["auto_approved"] += 1
    for row in rules.values():
        row["agreement_rate"] = round(row["agreed"] / row["decided"], 3) if row["decided"] else None
    executed = session.execute(
        select(ActionRequest.id, Approval.decided_by)
        .join(Approval, Approval.request_id == ActionRequest.id)
        .where(
            ActionRequest.status == "executed",
            Approval.decision != "reject",
            order_condition(session, ActionRequest.order_id),
        )
    ).all()
    by_request: dict[int, set[str]] = {}
    for rid, who in executed:
        by_request.setdefault(rid, set()).add(who)
    touchless = sum(1 for who in by_request.values() if who == {"policy"})
    return {
        "enabled": autopilot_on(policy),
        "rules": rules,
        "executed_requests": len(by_request),
        "touchless": touchless,
        "touchless_rate": round(touchless / len(by_request), 3) if by_request else None,
    }
