"""Operations KPIs computed from the records and the ops store (definitions in docs/kpis.md).

``compute_kpis(session, since=...)`` returns a dictionary keyed by KPI name. Every KPI is a dict
whose ``value`` is its headline number (a ratio in [0, 1], hours, days or a count) and whose other
keys are the numerator, the denominator and the breakdowns it came from. A ratio with an empty
denominator is ``None`` (null in JSON), never 0: "no shipped order yet" is not "0 % on time".

The population is the orders placed on or after ``since`` (orders.order_date; all orders when
``since`` is None) and everything attached to them: their lines, shipments, exceptions, action
requests and approvals. Counts and sums run as SQL aggregations (GROUP BY) on SQLite and
PostgreSQL alike; only the small aggregated results come back to Python, where the percentiles
are taken (numpy's linear interpolation between closest ranks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, literal, select
from sqlalchemy.orm import Session

from agent.ops.anomalies import recurrence_window, recurring_anomalies
from agent.ops.notice_kpis import notices_within_policy
from agent.policy import load_policy
from agent.settings import get_settings
from tools.models import (
    ActionRequest,
    Approval,
    Customer,
    ExceptionRecord,
    Item,
    Order,
    OrderLine,
    Shipment,
)
from tools.outbox import MESSAGE_ACTIONS
from tools.sites import orders_where, scope_of

__all__ = ["KPI_NAMES", "RESOLUTION_SLA_HOURS", "compute_kpis", "percentile", "ratio"]

# Time allowed to resolve an exception, in calendar hours, per type: the SOP's business-hour target
# rounded up to whole business days of 24 calendar hours (a target met in business hours is then
# met here). The source of each value is in docs/kpis.md.
RESOLUTION_SLA_HOURS: dict[str, int] = {
    "CREDIT_HOLD": 24,  # SOP-CREDIT-001 §4: high risk within 8 business hours
    "PRICING_DISCREPANCY": 24,  # SOP-PRICE-001: within 1 business day
    "INVENTORY_SHORTFALL": 24,  # SOP-INV-001: all others within 1 business day
    "SUBSTITUTION_REQUEST": 24,  # SOP-SUB-001: 4 business hours to agree with the customer
    "CARRIER_DISRUPTION": 24,  # SOP-LOG-001 §4: within 4 business hours
    "PROCUREMENT_DELAY": 24,  # SOP-PROC-001: the buyer acts within 1 business day
    "MASTER_DATA_INCOMPLETE": 24,  # SOP-MD-001: checked within 1 business day
    "COMPLIANCE_HOLD": 48,  # SOP-EXP-001: decision within 2 business days
    "RECURRING_ANOMALY": 120,  # SOP-OPS-001: analysis within 5 business days
}
DEFAULT_SLA_HOURS = 24
RECURRENCE_DIMENSIONS = ("sku", "customer")  # domain.md §2's RECURRING_ANOMALY rule
AGING_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<24h", 24),
    ("1-3d", 72),
    ("3-7d", 168),
    (">7d", float("inf")),
)

KPI_NAMES = (
    "exception_frequency",
    "exception_aging",
    "manual_touches_per_order",
    "order_cycle_time",
    "fill_rate",
    "on_time_in_full",
    "expedited_freight_incidence",
    "resolved_within_policy",
    "recommendation_acceptance_rate",
    "override_rate",
    "root_cause_recurrence",
    "notices_sent_within_policy",
)

_DECIDED = ("approved", "rejected", "executed", "failed")
_APPROVED = ("approved", "executed", "failed")  # failed: approved, then the execution failed


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` rounded to 4 places; None when the denominator is 0."""
    return None if not denominator else round(numerator / denominator, 4)


def percentile(values: np.ndarray | list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation between closest ranks); None for no values."""
    arr = np.asarray(values, dtype=float)
    return None if arr.size == 0 else round(float(np.percentile(arr, q)), 4)


def _as_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns stored UTC timestamps without their zone."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _hours_between(session: Session, start, end):
    """SQL expression: hours from ``start`` to ``end`` (timestamps), on SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


class _Scope:
    """The population filter: orders placed on or after ``since``, at the session's sites
    (``tools.sites``: a user limited to some sites gets their sites' KPIs)."""

    def __init__(self, since: dt.date | None, session: Session | None = None) -> None:
        self.since = since
        self.sites = None if session is None or scope_of(session).unrestricted else orders_where(session)

    def orders(self, query: Select, order_id_col=None) -> Select:
        """Restrict ``query`` to the population; join orders on ``order_id_col`` unless it is there."""
        conditions: list[ColumnElement[bool]] = [] if self.sites is None else [self.sites]
        if self.since is not None:
            conditions.append(Order.order_date >= self.since)
        if not conditions:
            return query
        if order_id_col is None:  # orders is already in the query
            return query.where(*conditions)
        return query.join(Order, Order.order_id == order_id_col).where(*conditions)


def compute_kpis(
    session: Session, *, since: dt.date | None = None, now: dt.datetime | None = None, policy=None
) -> dict[str, dict[str, Any]]:
    """Every KPI of docs/kpis.md for the orders placed on or after ``since``, keyed by KPI name.

    ``now`` (default: the current time) is when open exceptions are aged. ``policy`` (default: the
    one COPILOT_POLICY names, else the shipped one) gives the recurrence window and threshold of ``root_cause_recurrence``.
    """
    now = _aware(now or dt.datetime.now(dt.UTC))
    scope = _Scope(since, session)
    if policy is None:
        policy = load_policy(get_settings().policy_path)
    orders_total = session.scalar(scope.orders(select(func.count()).select_from(Order))) or 0
    frequency = _exception_frequency(session, scope, orders_total)
    kpis: dict[str, dict[str, Any]] = {
        "exception_frequency": frequency,
        "exception_aging": _exception_aging(session, scope, now),
        "manual_touches_per_order": _manual_touches(
            session, scope, orders_total, frequency["orders_with_exceptions"]
        ),
        "order_cycle_time": _cycle_time(session, scope),
        "fill_rate": _fill_rate(session, scope),
        "on_time_in_full": _otif(session, scope),
        "expedited_freight_incidence": _expedited(session, scope),
        "resolved_within_policy": _within_policy(session, scope, now),
    }
    kpis.update(_recommendations(session, scope))
    kpis["root_cause_recurrence"] = _recurrence(session, policy, since)
    kpis["notices_sent_within_policy"] = notices_within_policy(session, since=since, now=now)
    return kpis


# -- exceptions -------------------------------------------------------------------------------------


def _exception_frequency(session: Session, scope: _Scope, orders_total: int) -> dict[str, Any]:
    """One GROUP BY over (type, warehouse, tier, supplier, family); the breakdowns are its margins."""
    wh = Order.__table__.alias("wh_order")
    warehouse = func.coalesce(ExceptionRecord.warehouse_id, wh.c.warehouse_id)
    keys = (ExceptionRecord.type, warehouse, Customer.tier, Item.supplier_id, Item.product_family)
    query = (
        select(*keys, func.count())
        .select_from(ExceptionRecord)
        .outerjoin(wh, wh.c.order_id == ExceptionRecord.order_id)
        .outerjoin(Customer, Customer.customer_id == ExceptionRecord.customer_id)
        .outerjoin(Item, Item.sku == ExceptionRecord.sku)
        .group_by(*keys)
    )
    margins: list[dict[str, int]] = [{} for _ in keys]
    total = 0
    for *values, n in session.execute(scope.orders(query, ExceptionRecord.order_id)).all():
        total += n
        for margin, value in zip(margins, values, strict=True):
            name = "(none)" if value is None else str(value)
            margin[name] = margin.get(name, 0) + n
    by_type, by_warehouse, by_tier, by_supplier, by_family = (
        dict(sorted(m.items(), key=lambda kv: (-kv[1], kv[0]))) for m in margins
    )
    with_exc = (
        session.scalar(
            scope.orders(select(func.count(distinct(ExceptionRecord.order_id))), ExceptionRecord.order_id)
        )
        or 0
    )
    return {
        "value": ratio(with_exc, orders_total),
        "unit": "share of orders",
        "total": total,
        "orders": orders_total,
        "orders_with_exceptions": with_exc,
        "by_type": by_type,
        "by_warehouse": by_warehouse,
        "by_customer_tier": by_tier,
        "by_supplier": by_supplier,
        "by_product_family": by_family,
    }


def _exception_aging(session: Session, scope: _Scope, now: dt.datetime) -> dict[str, Any]:
    query = scope.orders(
        select(ExceptionRecord.first_seen_at).where(ExceptionRecord.status == "open"),
        ExceptionRecord.order_id,
    )
    hours = np.array([max(0.0, (now - _aware(t)).total_seconds() / 3600) for t in session.scalars(query)])
    buckets, lower = {}, 0.0
    for name, upper in AGING_BUCKETS:
        buckets[name] = int(((hours >= lower) & (hours < upper)).sum())
        lower = upper
    return {
        "value": percentile(hours, 50),
        "unit": "hours",
        "open": int(hours.size),
        "p50_hours": percentile(hours, 50),
        "p90_hours": percentile(hours, 90),
        "max_hours": round(float(hours.max()), 4) if hours.size else None,
        "buckets": buckets,
    }


def _within_policy(session: Session, scope: _Scope, now: dt.datetime) -> dict[str, Any]:
    sla = case(
        *[(ExceptionRecord.type == t, literal(h)) for t, h in RESOLUTION_SLA_HOURS.items()],
        else_=literal(DEFAULT_SLA_HOURS),
    )
    took = _hours_between(session, ExceptionRecord.first_seen_at, ExceptionRecord.resolved_at)
    resolved = ExceptionRecord.resolved_at.is_not(None)
    query = scope.orders(
        select(
            ExceptionRecord.type,
            func.sum(case((and_(resolved, took <= sla), 1), else_=0)),
            func.sum(case((resolved, 1), else_=0)),
        ).group_by(ExceptionRecord.type),
        ExceptionRecord.order_id,
    )
    by_type: dict[str, dict[str, Any]] = {}
    for kind, within, done in session.execute(query).all():
        by_type[kind] = {"within": int(within or 0), "resolved": int(done or 0), "open_breached": 0}
    # Open exceptions already older than their allowance have missed it: they count as breaches.
    open_rows = scope.orders(
        select(ExceptionRecord.type, ExceptionRecord.first_seen_at).where(
            ExceptionRecord.resolved_at.is_(None)
        ),
        ExceptionRecord.order_id,
    )
    for kind, seen in session.execute(open_rows).all():
        if (now - _aware(seen)).total_seconds() / 3600 > RESOLUTION_SLA_HOURS.get(kind, DEFAULT_SLA_HOURS):
            by_type.setdefault(kind, {"within": 0, "resolved": 0, "open_breached": 0})["open_breached"] += 1
    within = sum(v["within"] for v in by_type.values())
    judged = sum(v["resolved"] + v["open_breached"] for v in by_type.values())
    for v in by_type.values():
        v["rate"] = ratio(v["within"], v["resolved"] + v["open_breached"])
    return {
        "value": ratio(within, judged),
        "unit": "share of exceptions",
        "within": within,
        "judged": judged,
        "sla_hours": dict(RESOLUTION_SLA_HOURS),
        "by_type": dict(sorted(by_type.items())),
    }


# -- orders -----------------------------------------------------------------------------------------


def _manual_touches(session: Session, scope: _Scope, orders_total: int, with_exc: int) -> dict[str, Any]:
    query = (
        select(func.count())
        .select_from(Approval)
        .join(ActionRequest, ActionRequest.id == Approval.request_id)
    )
    touches = session.scalar(scope.orders(query, ActionRequest.order_id)) or 0
    return {
        "value": ratio(touches, orders_total),
        "unit": "touches per order",
        "touches": touches,
        "orders": orders_total,
        "per_exception_order": ratio(touches, with_exc),
    }


def _cycle_time(session: Session, scope: _Scope) -> dict[str, Any]:
    query = scope.orders(
        select(Order.order_date, Order.shipped_date, func.count())
        .where(Order.status == "shipped", Order.shipped_date.is_not(None), Order.order_date.is_not(None))
        .group_by(Order.order_date, Order.shipped_date)
    )
    days, weights = [], []
    for ordered, shipped, n in session.execute(query).all():
        start, end = _as_date(ordered), _as_date(shipped)
        if start is None or end is None:  # excluded by the query; says so to the type checker
            continue
        days.append((end - start).days)
        weights.append(n)
    values = (
        np.repeat(np.asarray(days, dtype=float), np.asarray(weights, dtype=int)) if days else np.array([])
    )
    return {
        "value": percentile(values, 50),
        "unit": "days",
        "orders": int(values.size),
        "mean_days": round(float(values.mean()), 4) if values.size else None,
        "p50_days": percentile(values, 50),
        "p90_days": percentile(values, 90),
    }


def _fill_rate(session: Session, scope: _Scope) -> dict[str, Any]:
    query = scope.orders(
        select(
            func.coalesce(func.sum(OrderLine.shipped_qty), 0),
            func.coalesce(func.sum(OrderLine.qty), 0),
            func.count(),
            func.coalesce(func.sum(case((OrderLine.shipped_qty >= OrderLine.qty, 1), else_=0)), 0),
        )
        .select_from(OrderLine)
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(OrderLine.status != "cancelled", Order.status == "shipped")
    )
    shipped, ordered, lines, full = session.execute(query).one()
    return {
        "value": ratio(int(shipped), int(ordered)),
        "unit": "share of units",
        "shipped_units": int(shipped),
        "ordered_units": int(ordered),
        "lines": int(lines),
        "line_fill_rate": ratio(int(full), int(lines)),
    }


def _otif(session: Session, scope: _Scope) -> dict[str, Any]:
    short = (
        select(
            OrderLine.order_id.label("order_id"),
            func.sum(case((OrderLine.shipped_qty < OrderLine.qty, 1), else_=0)).label("short_lines"),
        )
        .where(OrderLine.status != "cancelled")
        .group_by(OrderLine.order_id)
        .subquery()
    )
    ships = (
        select(
            Shipment.order_id.label("order_id"),
            func.max(Shipment.delivered_date).label("delivered"),
            func.sum(case((Shipment.delivered_date.is_(None), 1), else_=0)).label("pending"),
        )
        .group_by(Shipment.order_id)
        .subquery()
    )
    on_time = ships.c.delivered <= Order.promised_date
    in_full = func.coalesce(short.c.short_lines, 0) == 0
    query = (
        select(
            func.count(),
            func.coalesce(func.sum(case((on_time, 1), else_=0)), 0),
            func.coalesce(func.sum(case((in_full, 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(on_time, in_full), 1), else_=0)), 0),
        )
        .select_from(Order)
        .join(ships, ships.c.order_id == Order.order_id)
        .outerjoin(short, short.c.order_id == Order.order_id)
        .where(Order.status == "shipped", ships.c.pending == 0, Order.promised_date.is_not(None))
    )
    if scope.since is not None:
        query = query.where(Order.order_date >= scope.since)
    judged, ot, inf, otif = (int(x) for x in session.execute(query).one())
    return {
        "value": ratio(otif, judged),
        "unit": "share of orders",
        "orders": judged,
        "on_time": ot,
        "in_full": inf,
        "on_time_in_full": otif,
        "on_time_rate": ratio(ot, judged),
        "in_full_rate": ratio(inf, judged),
    }


def _expedited(session: Session, scope: _Scope) -> dict[str, Any]:
    express = Shipment.service_level == "express"
    query = scope.orders(
        select(
            func.count(distinct(Shipment.order_id)),
            func.count(distinct(case((express, Shipment.order_id)))),
            func.count(),
            func.coalesce(func.sum(case((express, 1), else_=0)), 0),
            func.coalesce(func.sum(case((express, Shipment.freight_cost), else_=0)), 0),
            func.coalesce(func.sum(Shipment.freight_cost), 0),
        )
        .select_from(Shipment)
        .where(Shipment.order_id.is_not(None)),
        Shipment.order_id,
    )
    orders, exp_orders, ships, exp_ships, exp_cost, cost = session.execute(query).one()
    return {
        "value": ratio(exp_orders, orders),
        "unit": "share of orders with a shipment",
        "orders_with_shipments": int(orders),
        "orders_expedited": int(exp_orders),
        "shipments": int(ships),
        "express_shipments": int(exp_ships),
        "express_freight_cost": round(float(exp_cost), 2),
        "freight_cost": round(float(cost), 2),
        "express_cost_share": ratio(float(exp_cost), float(cost)),
    }


# -- recommendations --------------------------------------------------------------------------------


def recommended_action(recommended: Any, action: str, is_recommendation: bool) -> str | None:
    """The copilot's recommended action behind a request, or None when it recommended nothing.

    A request that is one of the plan's actions (``is_recommendation``) is itself the
    recommendation; another request is measured against the order's recommendation it replaced
    (``recommended``: ``{"action": ..., "params": ...}`` as agent.governance.requests stores it, or a name).
    """
    if is_recommendation:
        return action
    if isinstance(recommended, Mapping):
        return recommended.get("action") or None
    return recommended if isinstance(recommended, str) and recommended else None


def request_outcomes(session: Session, since: dt.date | None = None) -> list[dict[str, Any]]:
    """Each decided action request that had a recommendation: what was recommended, what happened.

    ``accepted``: the copilot's own recommendation was approved as proposed (no edit);
    ``overridden``: a person chose another action, edited the parameters, or rejected it.
    """
    scope = _Scope(since)
    requests = session.execute(
        scope.orders(
            select(
                ActionRequest.id,
                ActionRequest.action,
                ActionRequest.is_recommendation,
                ActionRequest.recommended,
                ActionRequest.status,
            ).where(ActionRequest.status.in_(_DECIDED)),
            ActionRequest.order_id,
        )
    ).all()
    if not requests:
        return []
    edited = set(session.scalars(select(Approval.request_id).where(Approval.decision == "edit")))
    out = []
    for rid, action, is_rec, recommended, status in requests:
        if action in MESSAGE_ACTIONS:  # a notice answers a change; it is no alternative to the recommendation
            continue
        rec = recommended_action(recommended, action, bool(is_rec))
        if rec is None:
            continue
        accepted = bool(is_rec) and status in _APPROVED and rid not in edited
        out.append(
            {
                "request_id": rid,
                "recommended": rec,
                "action": action,
                "status": status,
                "accepted": accepted,
                "overridden": not accepted,
            }
        )
    return out


def _recommendations(session: Session, scope: _Scope) -> dict[str, dict[str, Any]]:
    outcomes = request_outcomes(session, scope.since)
    by_action: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        entry = by_action.setdefault(o["recommended"], {"decided": 0, "accepted": 0, "overridden": 0})
        entry["decided"] += 1
        entry["accepted"] += o["accepted"]
        entry["overridden"] += o["overridden"]
    for entry in by_action.values():
        entry["acceptance_rate"] = ratio(entry["accepted"], entry["decided"])
        entry["override_rate"] = ratio(entry["overridden"], entry["decided"])
    accepted = sum(o["accepted"] for o in outcomes)
    overridden = len(outcomes) - accepted
    by_action = dict(sorted(by_action.items()))
    return {
        "recommendation_acceptance_rate": {
            "value": ratio(accepted, len(outcomes)),
            "unit": "share of decided",
            "decided": len(outcomes),
            "accepted": accepted,
            "by_action": {a: e["acceptance_rate"] for a, e in by_action.items()},
        },
        "override_rate": {
            "value": ratio(overridden, len(outcomes)),
            "unit": "share of decided",
            "decided": len(outcomes),
            "overridden": overridden,
            "by_action": by_action,
        },
    }


def _recurrence(session: Session, policy, since: dt.date | None) -> dict[str, Any]:
    """Share of the recurrence window's exceptions whose root cause recurs: the domain's rule
    (domain.md §2: the same type on the same SKU or customer), not the coarser warehouse and
    supplier groups the anomaly list adds."""
    window = recurrence_window(session, policy)
    if window is None:
        return {
            "value": None,
            "unit": "share of the window's exceptions",
            "recurring_groups": 0,
            "exceptions_in_recurring_groups": 0,
            "window_exceptions": 0,
            "recurring_anomaly_flags": 0,
            "window": None,
            "by_dimension": {d: 0 for d in RECURRENCE_DIMENSIONS},
        }
    start, end = window
    start = max(start, since) if since is not None else start
    groups = recurring_anomalies(session, policy, since=since, dimensions=RECURRENCE_DIMENSIONS, costs=False)
    in_window = (
        select(ExceptionRecord.type, func.count())
        .join(Order, Order.order_id == ExceptionRecord.order_id)
        .where(Order.order_date >= start, Order.order_date <= end)
        .group_by(ExceptionRecord.type)
    )
    counts = dict(session.execute(in_window).all())
    flagged = counts.pop("RECURRING_ANOMALY", 0)
    in_groups = len({eid for g in groups for eid in g["exception_ids"]})
    return {
        "value": ratio(in_groups, sum(counts.values())),
        "unit": "share of the window's exceptions",
        "recurring_groups": len(groups),
        "exceptions_in_recurring_groups": in_groups,
        "window_exceptions": sum(counts.values()),
        "recurring_anomaly_flags": flagged,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "by_dimension": {d: sum(1 for g in groups if g["dimension"] == d) for d in RECURRENCE_DIMENSIONS},
    }
