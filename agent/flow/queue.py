"""Role work queues: every open exception with its owner role, priority score and SLA due time.

Computed from the exceptions table and the policy's ``queues`` section when a queue is read, so
the urgency is always the current one:

- owner: the role a person reassigned it to, else the policy's first matching rule (type, customer
  tier, minimum order value), else the owner of its type;
- SLA due: first sighting + the type's ``sla_hours``; past it, the SLA is breached and the sweep
  (:func:`escalate_breached`, run by the worker) escalates it once to ``escalate_to[owner]``;
- priority (0-100): a weighted sum of promise urgency (1 when the promised date is due or past,
  0 at ``promise_horizon_days`` out), SLA urgency (share of the SLA time used), order value (log
  scale up to ``value_full``), customer tier, and how many other orders wait on the same thing
  (open exceptions of the same type on the same SKU, or for the same customer).

A user limited to some sites (``tools.sites``) sees only their orders' exceptions; priorities and
the "waiting" counts are computed over every site, so an item ranks the same for everyone.
A role sees the exceptions it owns, those of the roles it covers (the policy's hierarchy) and
those escalated to one of them. The recommendation of each listed exception comes from triaging
its order (read only), so it is the next-best action for the records as they are now.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.governance.autopilot import autopilot_report
from agent.ops.kpis import compute_kpis
from agent.policy import Policy
from agent.triage.service import OrderNotFound, triage_order
from tools.models import Customer, ExceptionRecord, Order, OrderLine
from tools.rules import ACTIVE_LINE_STATUSES
from tools.rules import CLOSED_STATUSES as CLOSED
from tools.sites import warehouse_ids

__all__ = ["all_kpis", "load_queue", "queue_sizes", "recommendation_for", "workflow_kpis"]

_X, _O, _C, _L = ExceptionRecord.__table__, Order.__table__, Customer.__table__, OrderLine.__table__
_CHUNK = 500


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


def _order_values(session: Session, ids: list[str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    value = func.sum(_L.c.qty * _L.c.unit_price)
    for i in range(0, len(ids), _CHUNK):
        stmt = (
            select(_L.c.order_id, value)
            .where(_L.c.order_id.in_(ids[i : i + _CHUNK]), _L.c.status.in_(ACTIVE_LINE_STATUSES))
            .group_by(_L.c.order_id)
        )
        out.update({oid: Decimal(str(v or 0)) for oid, v in session.execute(stmt)})
    return out


def _score(
    policy: Policy, row: Any, value: Decimal, waiting: int, due: dt.datetime, now: dt.datetime
) -> float:
    p = policy.queues.scoring
    promise = 0.0
    if row.promised_date is not None:
        days = (row.promised_date - now.date()).days
        promise = min(1.0, max(0.0, 1 - days / p.promise_horizon_days))
    first = _aware(row.first_seen_at)
    total = (due - first).total_seconds() if first else 0
    sla = min(1.0, max(0.0, (now - first).total_seconds() / total)) if first and total > 0 else 0.0
    worth = min(1.0, math.log10(1 + float(value)) / math.log10(1 + float(p.value_full))) if value > 0 else 0.0
    tier = p.tiers.get(row.tier or "standard", 0.0)
    wait = min(1.0, waiting / p.waiting_full)
    weights = p.promise + p.sla + p.value + p.tier + p.waiting
    total_score = p.promise * promise + p.sla * sla + p.value * worth + p.tier * tier + p.waiting * wait
    return round(100 * total_score / weights, 1) if weights else 0.0


def _items(session: Session, policy: Policy, now: dt.datetime) -> list[dict[str, Any]]:
    """Every open exception of an open (not shipped or cancelled) order, as a queue item."""
    stmt = (
        select(
            _X.c.id,
            _X.c.order_id,
            _X.c.type,
            _X.c.instance_key,
            _X.c.line_no,
            _X.c.shipment_id,
            _X.c.sku,
            _X.c.evidence,
            _X.c.assigned_role,
            _X.c.claimed_by,
            _X.c.claimed_at,
            _X.c.escalated_to,
            _X.c.escalated_at,
            _X.c.first_seen_at,
            _O.c.customer_id,
            _O.c.promised_date,
            _O.c.warehouse_id,
            _C.c.tier,
            _C.c.name.label("customer_name"),
        )
        .join(_O, _O.c.order_id == _X.c.order_id)
        .outerjoin(_C, _C.c.customer_id == _O.c.customer_id)
        .where(_X.c.status == "open", _O.c.status.not_in(CLOSED))
    )
    rows = session.execute(stmt).all()
    values = _order_values(session, sorted({r.order_id for r in rows}))
    by_sku = Counter((r.type, r.sku) for r in rows if r.sku)
    by_customer = Counter((r.type, r.customer_id) for r in rows if r.customer_id and not r.sku)
    q = policy.queues
    sites = warehouse_ids(session)  # a scoped user's queue: their sites' orders (scores as for everyone)
    out = []
    for r in rows:
        if sites is not None and r.warehouse_id not in sites:
            continue
        value = values.get(r.order_id, Decimal("0"))
        waiting = (by_sku[(r.type, r.sku)] if r.sku else by_customer[(r.type, r.customer_id)]) - 1
        owner = r.assigned_role or q.owner(r.type, r.tier, value)
        first = r.first_seen_at if r.first_seen_at.tzinfo else r.first_seen_at.replace(tzinfo=dt.UTC)
        due = first + dt.timedelta(hours=q.sla(r.type))
        out.append(
            {
                "id": r.id,
                "order_id": r.order_id,
                "type": r.type,
                "instance": r.instance_key,
                "line_no": r.line_no,
                "shipment_id": r.shipment_id,
                "evidence": list(r.evidence or []),
                "owner_role": owner,
                "escalated_to": r.escalated_to,
                "escalated_at": _aware(r.escalated_at),
                "claimed_by": r.claimed_by,
                "claimed_at": _aware(r.claimed_at),
                "first_seen_at": first,
                "sla_due_at": due,
                "sla_breached": now > due,
                "priority": _score(policy, r, value, max(0, waiting), due, now),
                "customer_id": r.customer_id,
                "customer_name": r.customer_name,
                "customer_tier": r.tier,
                "promised_date": r.promised_date,
                "order_value": value,
                "waiting": max(0, waiting),
            }
        )
    return out


def recommendation_for(
    session: Session, policy: Policy, order_id: str, type_: str, instance: str
) -> dict[str, Any] | None:
    """The next-best action for one exception (type and instance) of an order, from a read-only
    triage."""
    return _recommendations(session, policy, [order_id]).get((order_id, type_, instance))


def _recommendations(session: Session, policy: Policy, order_ids: Iterable[str]) -> dict[tuple, dict]:
    """(order, type, instance) -> its first feasible action. The type is part of the key: two
    exceptions of one line (a shortfall and a procurement delay) share the instance ``line:N``."""
    out: dict[tuple, dict] = {}
    for oid in sorted(set(order_ids)):
        try:
            result = triage_order(session, oid, policy, record=False)
        except OrderNotFound:
            continue
        priced = {
            (o["action"], repr(sorted(o["params"].items()))): o
            for o in result["plan"] + result["alternatives"]
        }
        for inst in result["options"]:
            first = next((c for c in inst["candidates"] if c["feasible"]), None)
            if first is None:
                continue
            known = priced.get((first["action"], repr(sorted(first["params"].items()))), {})
            out[(oid, inst["type"], inst["instance"])] = {
                "action": first["action"],
                "params": first["params"],
                "risk": known.get("risk"),
                "approver_role": known.get("approver_role"),
                "reason": first.get("reason"),
            }
    return out


def load_queue(
    session: Session,
    policy: Policy,
    *,
    role: str | None = None,
    now: dt.datetime | None = None,
    limit: int = 100,
    recommendations: bool = True,
) -> list[dict[str, Any]]:
    """The queue of ``role`` (with the roles it covers), or every open exception; by priority."""
    now = now or dt.datetime.now(dt.UTC)
    items = _items(session, policy, now)
    if role is not None:
        covered = policy.delegates(role)
        items = [i for i in items if i["owner_role"] in covered or i["escalated_to"] in covered]
    items.sort(key=lambda i: (-i["priority"], i["sla_due_at"], i["order_id"], i["instance"]))
    items = items[:limit]
    if recommendations:
        recs = _recommendations(session, policy, (i["order_id"] for i in items))
        for i in items:
            i["recommendation"] = recs.get((i["order_id"], i["type"], i["instance"]))
    return items


def queue_sizes(
    session: Session, policy: Policy, now: dt.datetime | None = None
) -> dict[str, dict[str, int]]:
    """Per owner role: open exceptions, breached SLAs, escalated, claimed (a KPI)."""
    out: dict[str, dict[str, int]] = {}
    for i in _items(session, policy, now or dt.datetime.now(dt.UTC)):
        row = out.setdefault(i["owner_role"], {"open": 0, "sla_breached": 0, "escalated": 0, "claimed": 0})
        row["open"] += 1
        row["sla_breached"] += i["sla_breached"]
        row["escalated"] += i["escalated_to"] is not None
        row["claimed"] += i["claimed_by"] is not None
    return dict(sorted(out.items()))


def workflow_kpis(
    session: Session, policy: Policy, now: dt.datetime | None = None
) -> dict[str, dict[str, Any]]:
    """The workflow KPIs beside docs/kpis.md's (issue 17), in their shape ({"value", "unit", ...}):
    the touchless rate (executed requests decided by policy alone, as `copilot autopilot report`
    counts it), the open exceptions of the work queues and those past their SLA, per owner role.
    They describe the queues now and all requests: `--since` does not narrow them."""
    report = autopilot_report(session, policy)
    sizes = queue_sizes(session, policy, now)
    return {
        "touchless_rate": {
            "value": report["touchless_rate"],
            "unit": "share of executed requests decided by policy alone",
            "touchless": report["touchless"],
            "executed_requests": report["executed_requests"],
        },
        "queue_sizes": {
            "value": sum(row["open"] for row in sizes.values()),
            "unit": "open exceptions in the work queues",
            "by_role": sizes,
        },
        "sla_breaches": {
            "value": sum(row["sla_breached"] for row in sizes.values()),
            "unit": "open exceptions past their SLA due time",
            "by_role": {role: row["sla_breached"] for role, row in sizes.items()},
        },
    }


def all_kpis(session: Session, policy: Policy, since: dt.date | None = None) -> dict[str, dict[str, Any]]:
    """Every KPI `copilot kpis` and GET /api/v1/kpis report: docs/kpis.md's from the order history
    (``since`` narrows them) and the workflow's (:func:`workflow_kpis`), under one policy."""
    return {**compute_kpis(session, since=since, policy=policy), **workflow_kpis(session, policy)}
