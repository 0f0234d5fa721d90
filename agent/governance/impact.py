"""What-if: what a proposed action would do to the other open orders (domain.md §6 "Impact").

The action is applied by the write itself (:func:`tools.writes.apply`, the code the executor runs)
inside a SAVEPOINT that is always rolled back: nothing is written, nothing is logged as a change.
Every other open order with a line on a (sku, warehouse) the action touches is triaged before
and inside the savepoint, and the exceptions that would appear or clear are reported per order
with its customer tier and order value. The same computation serves the CLI (``copilot whatif``),
the API (``POST /api/v1/whatif``), the approvals panel, the decision's audit event and the chat.

The (sku, warehouse) pairs an action touches, before and after the change: those of the line it
writes (a reallocation's old and new warehouse, a substitution's old and new SKU, a split) and of
a reassignment's donor line; every line of the order for a new promise date (its priority
changes); a purchase order's own. Actions on credit, price, carriers, master data or compliance
change no stock, allocation or priority another order's rules read: they touch no pair, and only
the order itself is compared.

Where domain.md is silent: the orders are compared on the rules of one order (§2 and §6, the
exception instances by type and line or shipment); ``RECURRING_ANOMALY``, a count across the
order history, is left to the orders' own triage. An action whose preconditions fail, that
names a record outside the order it is asked for (``tools.scope``: the guard would block it), or that
still needs an approver's values, has no impact: the answer says why.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from agent.governance.guard import normalise_params
from agent.governance.intake import refuse_params_without_action
from agent.policy import Policy
from agent.triage.allocation import open_orders_at
from agent.triage.detection import Detected, OrderContext, OrderNotFound, detect, load_contexts
from agent.triage.order_numbers import order_id_of, params_ids
from agent.triage.service import triage_order
from tools import rules, writes
from tools.errors import Conflict, NotFound, PreconditionFailed, ToolError
from tools.models import Order, OrderLine, PurchaseOrder
from tools.scope import scope_problems
from tools.sites import scope_of, visible_orders

__all__ = ["MAX_ORDERS_SHOWN", "OTHER_SITE", "describe", "summary", "whatif"]

# How an affected order of a site outside the asking user's scope is shown: its impact counts (the
# decision's consequences are facts), its identity does not leave its site.
OTHER_SITE = {"order_id": "(another site)", "customer_id": None}

MAX_ORDERS_SHOWN = 50  # affected orders listed in full; the count says how many there were
_SKIPPED = frozenset({"RECURRING_ANOMALY"})


def _touched(session: Session, action: str, params: dict[str, Any], order_id: str) -> set[tuple[str, str]]:
    """The (sku, warehouse) pairs the action touches on the records as they are now."""
    ol, o = OrderLine.__table__, Order.__table__
    keys: set[tuple[str, str]] = set()
    if action == "UPDATE_PROMISE_DATE":  # the order's priority: every line of it competes anew
        where = [ol.c.order_id == order_id]
    elif "line_no" in params:  # the line it writes, and a reassignment's donor line
        lines = [(order_id, params["line_no"])]
        if action == "REASSIGN_ALLOCATION" and params.get("from_order_id"):
            lines.append((params["from_order_id"], params.get("from_line_no")))
        where = [or_(*(and_(ol.c.order_id == oid, ol.c.line_no == no) for oid, no in lines))]
    else:
        where = []
    if params.get("po_id"):
        po = session.get(PurchaseOrder, params["po_id"])
        if po is not None and po.sku and po.warehouse_id:
            keys.add((po.sku, po.warehouse_id))
    if where:
        rows = session.execute(
            select(ol.c.sku, ol.c.warehouse_id, o.c.warehouse_id)
            .join(o, o.c.order_id == ol.c.order_id)
            .where(*where, ol.c.status.in_(rules.ACTIVE_LINE_STATUSES))
        )
        keys.update((sku, own or order_wh) for sku, own, order_wh in rows if sku and (own or order_wh))
    return keys


def _found(contexts: dict[str, OrderContext], policy: Policy) -> dict[str, dict[str, Detected]]:
    return {
        oid: {f"{d.type}@{d.instance_key}": d for d in detect(ctx, policy) if d.type not in _SKIPPED}
        for oid, ctx in contexts.items()
    }


def _item(d: Detected) -> dict[str, Any]:
    return {
        "type": d.type,
        "instance": d.instance_key,
        "line_no": d.line_no,
        "evidence": list(d.evidence[:2]),
    }


def _diff(before: dict[str, Detected], after: dict[str, Detected]) -> tuple[list, list]:
    appear = [_item(after[k]) for k in sorted(after.keys() - before.keys())]
    clear = [_item(before[k]) for k in sorted(before.keys() - after.keys())]
    return appear, clear


def _order_facts(ctx: OrderContext) -> dict[str, Any]:
    c = ctx.customer
    return {
        "order_id": ctx.order.order_id,
        "customer_id": ctx.order.customer_id,
        "tier": c.tier if c else None,
        "order_value": f"{ctx.order_value:.2f}",
    }


def whatif(
    session: Session,
    policy: Policy,
    *,
    order_id: str,
    action: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The impact of ``action`` with ``params`` filed for ``order_id`` (None: the order's
    recommendation) on the other open orders; see the module docstring. Read-only: the session's
    changes are rolled back before it returns. Raises :class:`NotFound` (order), :class:`Conflict`
    (no recommendation to take), :class:`ToolError` (an action or parameters the catalog refuses).
    """
    started = time.perf_counter()
    # read as typed (so-100042); another site's order (``tools.sites``): as unknown
    order_id = order_id_of(session, order_id or "", policy.order_numbers)
    params = params_ids(session, params, policy.order_numbers)
    refuse_params_without_action(action, params, "simulate")
    if action is None:
        try:
            rec = triage_order(session, order_id, policy, record=False)["recommendation"]
        except OrderNotFound:
            raise NotFound("order", order_id) from None
        if rec is None:
            raise Conflict(
                f"order {order_id} has no exception to act on, so no recommendation: name an action"
            )
        action, params = rec["action"], dict(rec["params"])
    action = str(action).strip().upper()
    normalised, problems = normalise_params(policy, action, params if params is not None else {})
    if normalised is None:
        raise ToolError("; ".join(problems))
    out: dict[str, Any] = {
        "order_id": order_id,
        "action": action,
        "params": normalised,
        "feasible": True,
        "reason": None,
        "rolled_back": True,
        "touched": [],
        "checked_orders": 0,
        "this_order": None,
        "other_orders": [],
        "other_orders_affected": 0,
    }
    outside = scope_problems(session, order_id, action, normalised)
    if outside:  # domain.md §3: the guard blocks it, so there is nothing to simulate
        out["feasible"], out["reason"] = False, "; ".join(outside)
        out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return out
    missing = writes.missing_inputs(session, action, normalised)
    if action not in writes.WRITE_ACTIONS or missing:
        # ESCALATE routes the exception, a customer notice or supplier request is a message: they
        # change no order, stock or allocation another order's rules read
        out["reason"] = (
            f"{action} changes no order, stock or allocation: no other order is affected"
            if action not in writes.WRITE_ACTIONS
            else f"the approver still has to supply {', '.join(missing)}: nothing to simulate yet"
        )
        out["feasible"] = not missing
        out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return out
    keys = _touched(session, action, normalised, order_id)
    ids = open_orders_at(session, keys) | {order_id}
    before = _found(load_contexts(session, ids), policy)
    savepoint = session.begin_nested()
    try:
        try:
            writes.apply(session, action, dict(normalised))
        except PreconditionFailed as exc:
            out["feasible"], out["reason"] = False, str(exc)
            out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
            return out
        session.flush()
        keys |= _touched(session, action, normalised, order_id)
        after_ids = open_orders_at(session, keys) | ids
        contexts = load_contexts(session, after_ids)
        after = _found(contexts, policy)
    finally:
        savepoint.rollback()
    new = after_ids - before.keys()
    if new:  # orders only the changed records reach: their state before is the one now restored
        before.update(_found(load_contexts(session, new), policy))
    out["touched"] = [list(k) for k in sorted(keys)]
    out["checked_orders"] = len(after_ids - {order_id})
    affected = []
    for oid in sorted(after_ids):
        appear, clear = _diff(before.get(oid, {}), after.get(oid, {}))
        if oid == order_id:
            out["this_order"] = {**_order_facts(contexts[oid]), "appear": appear, "clear": clear}
        elif appear or clear:
            affected.append({**_order_facts(contexts[oid]), "appear": appear, "clear": clear})
    if not scope_of(session).unrestricted:  # counted, but another site's orders are not named
        mine = visible_orders(session, [a["order_id"] for a in affected])
        affected = [a if a["order_id"] in mine else {**a, **OTHER_SITE} for a in affected]
    out["other_orders_affected"] = len(affected)
    out["other_orders"] = affected[:MAX_ORDERS_SHOWN]
    out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The impact in the compact form an audit event keeps: per affected order its tier, order
    value and the exception types that would appear or clear."""

    def types(items: list[dict[str, Any]]) -> list[str]:
        return [f"{i['type']}@{i['instance']}" for i in items]

    mine = result.get("this_order") or {}
    return {
        "feasible": result["feasible"],
        "reason": result.get("reason"),
        "checked_orders": result["checked_orders"],
        "other_orders_affected": result["other_orders_affected"],
        "this_order": {"appear": types(mine.get("appear", [])), "clear": types(mine.get("clear", []))},
        "other_orders": [
            {
                "order_id": o["order_id"],
                "tier": o["tier"],
                "order_value": o["order_value"],
                "appear": types(o["appear"]),
                "clear": types(o["clear"]),
            }
            for o in result["other_orders"]
        ],
    }


def _exceptions(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"{i['type']}" + (f" (line {i['line_no']})" if i.get("line_no") else "") for i in items)


def describe(result: dict[str, Any]) -> list[str]:
    """The impact as plain lines of text: the CLI prints them, the panel and the chat show them."""
    params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
    out = [f"what if {result['action']}({params}) on {result['order_id']}:"]
    if result.get("reason"):
        out.append(f"  {'' if result['feasible'] else 'not feasible: '}{result['reason']}")
        return out
    mine = result.get("this_order") or {}
    if mine.get("clear") or mine.get("appear"):
        out.append(
            f"  {result['order_id']} itself: clears [{_exceptions(mine['clear'])}]"
            + (f", raises [{_exceptions(mine['appear'])}]" if mine["appear"] else "")
        )
    n = result["other_orders_affected"]
    out.append(
        f"  {result['checked_orders']} other open order(s) share a (sku, warehouse) it touches; "
        f"{n} would change"
    )
    for o in result["other_orders"]:
        parts = []
        if o["appear"]:
            parts.append(f"gains [{_exceptions(o['appear'])}]")
        if o["clear"]:
            parts.append(f"clears [{_exceptions(o['clear'])}]")
        out.append(
            f"  - {o['order_id']} ({o['tier'] or 'no tier'} customer {o['customer_id']}, order value "
            f"{o['order_value']}): {'; '.join(parts)}"
        )
    if n > len(result["other_orders"]):
        out.append(f"  … and {n - len(result['other_orders'])} more")
    out.append("  (simulated in a transaction that was rolled back: nothing was written)")
    return out
