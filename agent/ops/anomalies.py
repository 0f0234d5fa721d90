"""Recurring anomalies: the root causes that keep coming back, ranked by what they cost.

A group is one exception type on one SKU, customer, warehouse or supplier. It recurs when it holds
on at least ``min_orders`` distinct orders whose order_date lies in the policy's recurrence window
(``thresholds.recurrence``: 30 days / 3 orders by default) ending at the reference date — the
snapshot's latest order_date unless ``as_of`` says otherwise. ``RECURRING_ANOMALY`` rows
themselves are not counted (they are the flag, not the cause).

Cost of a group (definitions in docs/kpis.md):
- ``touches``: the group's exception instances (each is worked by a person) plus the approval
  decisions on action requests for that type on those orders;
- ``expedite_spend``: freight cost of the express shipments of those orders;
- ``delayed_value``: order value (Σ qty × unit_price over lines not cancelled) of those orders that
  shipped after their promised date or still carry the group's exception open;
- ``cost_usd`` = touches × TOUCH_COST_USD + expedite_spend + DELAY_COST_RATE × delayed_value.
Groups are ranked by cost_usd, then orders, then (type, dimension, key); each carries a
process-redesign suggestion: a change to how the work is done, not one more action on one order.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.policy import Policy
from tools.models import ActionRequest, Approval, ExceptionRecord, Item, Order, OrderLine, Shipment
from tools.sites import orders_where

__all__ = [
    "DELAY_COST_RATE",
    "DIMENSIONS",
    "TOUCH_COST_USD",
    "recurrence_window",
    "recurring_anomalies",
    "suggestion_for",
]

DIMENSIONS = ("sku", "customer", "warehouse", "supplier")
TOUCH_COST_USD = 25.0  # a quarter hour of a planner's or analyst's loaded cost per worked instance
DELAY_COST_RATE = 0.02  # share of a late order's value lost (carrying cost, penalties, goodwill)

# (type, dimension) -> (suggestion, owner role, the catalog action it makes unnecessary or routine)
_SUGGESTIONS: dict[tuple[str, str], tuple[str, str, str | None]] = {
    ("INVENTORY_SHORTFALL", "sku"): (
        "Raise the safety stock and reorder point of {key} to its recent demand, and rebalance it between "
        "warehouses ahead of demand instead of per order",
        "planner",
        "REALLOCATE_WAREHOUSE",
    ),
    ("INVENTORY_SHORTFALL", "warehouse"): (
        "Review the replenishment parameters of {key} (min/max, review cycle) and move slow stock from "
        "over-stocked sites to it on a schedule",
        "planner",
        "REALLOCATE_WAREHOUSE",
    ),
    ("INVENTORY_SHORTFALL", "supplier"): (
        "Put {key} on a supplier scorecard, lengthen the planned lead time of its items, and dual-source "
        "the fast movers",
        "procurement_buyer",
        "EXPEDITE_PO",
    ),
    ("INVENTORY_SHORTFALL", "customer"): (
        "Agree a demand forecast or consignment stock with {key}; its orders outrun the stock plan",
        "planner",
        "SPLIT_SHIPMENT",
    ),
    ("PROCUREMENT_DELAY", "supplier"): (
        "Escalate {key} to a supplier performance review, correct its lead time in the item master, and "
        "qualify a second source",
        "procurement_buyer",
        "EXPEDITE_PO",
    ),
    ("PROCUREMENT_DELAY", "sku"): (
        "Re-plan {key}: its open POs arrive after promises are made — raise the order point or promise "
        "from the PO date at order entry",
        "procurement_buyer",
        "EXPEDITE_PO",
    ),
    ("CREDIT_HOLD", "customer"): (
        "Review the credit limit and payment terms of {key} with finance, and check credit before "
        "release rather than after the order is held",
        "credit_manager",
        "RELEASE_CREDIT_HOLD",
    ),
    ("PRICING_DISCREPANCY", "customer"): (
        "Correct the contract price master (or the EDI price feed) for {key}; the order channel keeps "
        "sending stale prices",
        "pricing_analyst",
        "CORRECT_PRICE",
    ),
    ("PRICING_DISCREPANCY", "sku"): (
        "Fix the list or contract price of {key} at its source and re-issue the price file",
        "pricing_analyst",
        "CORRECT_PRICE",
    ),
    ("CARRIER_DISRUPTION", "warehouse"): (
        "Re-tender the lanes out of {key}: move volume from the disrupted carrier to a reliable one and "
        "keep a contracted backup",
        "logistics_coordinator",
        "REBOOK_CARRIER",
    ),
    ("CARRIER_DISRUPTION", "customer"): (
        "Set a carrier preference and a realistic transit promise for {key}'s lanes",
        "logistics_coordinator",
        "REBOOK_CARRIER",
    ),
    ("MASTER_DATA_INCOMPLETE", "customer"): (
        "Complete {key}'s ship-to master data and make the fields mandatory in its order channel",
        "csr",
        "FIX_MASTER_DATA",
    ),
    ("SUBSTITUTION_REQUEST", "sku"): (
        "Phase out {key} in the catalogue: publish its approved substitute and update customers' "
        "standing orders",
        "csr",
        "APPROVE_SUBSTITUTION",
    ),
    ("COMPLIANCE_HOLD", "customer"): (
        "Obtain an export licence decision for {key} or stop offering controlled items on its "
        "cross-border ship-tos",
        "compliance_officer",
        "COMPLIANCE_REVIEW",
    ),
    ("COMPLIANCE_HOLD", "sku"): (
        "Flag {key} at order entry for cross-border ship-tos so it is sourced in-country",
        "compliance_officer",
        "COMPLIANCE_REVIEW",
    ),
}


def suggestion_for(kind: str, dimension: str, key: str) -> dict[str, Any]:
    text, role, action = _SUGGESTIONS.get(
        (kind, dimension),
        (
            "Run a root-cause review of {type} on {dimension} {key} (SOP-OPS-001) and change the step "
            "that lets it through",
            "ops_manager",
            None,
        ),
    )
    return {
        "text": text.format(key=key, type=kind, dimension=dimension),
        "owner_role": role,
        "replaces_action": action,
    }


def recurrence_window(
    session: Session, policy: Policy, as_of: dt.date | None = None
) -> tuple[dt.date, dt.date] | None:
    """(first, last) order_date of the recurrence window, or None when there are no orders."""
    end = as_of or session.scalar(select(func.max(Order.order_date)))
    if end is None:
        return None
    if not isinstance(end, dt.date):
        end = dt.date.fromisoformat(str(end)[:10])
    return end - dt.timedelta(days=policy.thresholds.recurrence.window_days), end


def recurring_anomalies(
    session: Session,
    policy: Policy,
    *,
    as_of: dt.date | None = None,
    since: dt.date | None = None,
    dimensions: tuple[str, ...] = DIMENSIONS,
    costs: bool = True,
) -> list[dict[str, Any]]:
    """The recurring (type × sku/customer/warehouse/supplier) groups, most costly first.

    ``costs=False`` skips the cost (touches, expedite spend, delayed value: all 0) and the ranking by
    it, for callers that only count the groups (the root-cause recurrence KPI).
    """
    window = recurrence_window(session, policy, as_of)
    if window is None:
        return []
    start, end = window
    if since is not None:
        start = max(start, since)
    min_orders = policy.thresholds.recurrence.min_orders
    in_window = (Order.order_date >= start, Order.order_date <= end)
    rows = session.execute(
        select(
            ExceptionRecord.id,
            ExceptionRecord.type,
            ExceptionRecord.order_id,
            ExceptionRecord.sku,
            func.coalesce(ExceptionRecord.customer_id, Order.customer_id),
            func.coalesce(ExceptionRecord.warehouse_id, Order.warehouse_id),
            Item.supplier_id,
            ExceptionRecord.status,
            Order.order_date,
        )
        .join(Order, Order.order_id == ExceptionRecord.order_id)
        .outerjoin(Item, Item.sku == ExceptionRecord.sku)
        .where(ExceptionRecord.type != "RECURRING_ANOMALY", *in_window, orders_where(session))
    ).all()  # a user limited to some sites (tools.sites): the patterns among their orders
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for eid, kind, oid, sku, cust, wh, supplier, status, day in rows:
        for dim, value in zip(
            ("sku", "customer", "warehouse", "supplier"), (sku, cust, wh, supplier), strict=True
        ):
            if dim not in dimensions or value is None or value == "":
                continue
            g = groups.setdefault((kind, dim, value), {"orders": set(), "ids": [], "open": set(), "days": []})
            g["orders"].add(oid)
            g["ids"].append(eid)
            g["days"].append(day)
            if status == "open":
                g["open"].add(oid)
    recurring = {k: g for k, g in groups.items() if len(g["orders"]) >= min_orders}
    if not recurring:
        return []
    facts = _order_facts(session, start, end) if costs else {}
    touches = _decisions(session, start, end) if costs else {}
    out = []
    for (kind, dim, key), g in recurring.items():
        orders = sorted(g["orders"])
        expedite = sum(facts[o]["express_cost"] for o in orders if o in facts)
        delayed = sum(
            facts[o]["value"] for o in orders if o in facts and (facts[o]["late"] or o in g["open"])
        )
        touch = len(g["ids"]) + sum(touches.get((o, kind), 0) for o in orders) if costs else 0
        cost = touch * TOUCH_COST_USD + expedite + DELAY_COST_RATE * delayed
        days = sorted(_date(d) for d in g["days"])
        out.append(
            {
                "type": kind,
                "dimension": dim,
                "key": key,
                "orders": len(orders),
                "order_ids": orders,
                "exceptions": len(g["ids"]),
                "exception_ids": sorted(g["ids"]),
                "open_orders": len(g["open"]),
                "first_order_date": days[0].isoformat(),
                "last_order_date": days[-1].isoformat(),
                "touches": touch,
                "expedite_spend": round(expedite, 2),
                "delayed_value": round(delayed, 2),
                "cost_usd": round(cost, 2),
                "suggestion": suggestion_for(kind, dim, key),
                "window": {"start": start.isoformat(), "end": end.isoformat(), "min_orders": min_orders},
            }
        )
    out.sort(key=lambda g: (-g["cost_usd"], -g["orders"], g["type"], g["dimension"], g["key"]))
    for rank, g in enumerate(out, 1):
        g["rank"] = rank
    return out


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _order_facts(session: Session, start: dt.date, end: dt.date) -> dict[str, dict[str, Any]]:
    """Per order of the window: value, express freight cost, and whether it shipped late."""
    in_window = (Order.order_date >= start, Order.order_date <= end)
    facts: dict[str, dict[str, Any]] = defaultdict(lambda: {"value": 0.0, "express_cost": 0.0, "late": False})
    for oid, status, promised, shipped in session.execute(
        select(Order.order_id, Order.status, Order.promised_date, Order.shipped_date).where(*in_window)
    ):
        late = (
            status == "shipped"
            and shipped is not None
            and promised is not None
            and _date(shipped) > _date(promised)
        )
        facts[oid]["late"] = late
    for oid, value in session.execute(
        select(OrderLine.order_id, func.sum(OrderLine.qty * OrderLine.unit_price))
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(OrderLine.status != "cancelled", *in_window)
        .group_by(OrderLine.order_id)
    ):
        facts[oid]["value"] = float(value or 0)
    for oid, cost in session.execute(
        select(Order.order_id, func.sum(Shipment.freight_cost))
        .join(Order, Order.order_id == Shipment.order_id)
        .where(Shipment.service_level == "express", *in_window)
        .group_by(Order.order_id)
    ):
        facts[oid]["express_cost"] = float(cost or 0)
    return facts


def _decisions(session: Session, start: dt.date, end: dt.date) -> dict[tuple[str, str], int]:
    """Approval decisions per (order, exception type) on the window's orders."""
    rows = session.execute(
        select(Order.order_id, ActionRequest.exception_type, func.count())
        .select_from(Approval)
        .join(ActionRequest, ActionRequest.id == Approval.request_id)
        .join(Order, Order.order_id == ActionRequest.order_id)
        .where(Order.order_date >= start, Order.order_date <= end)
        .group_by(Order.order_id, ActionRequest.exception_type)
    )
    return {(oid, kind): n for oid, kind, n in rows if kind}
