"""The facts of a chat turn as plain text: the fact-only rendering of every tool's result.

It is the answer when a tool's facts need no prose (an approval request, a "why not"), and the
fallback when the model fails or writes something the facts do not support — which
:func:`agent.copilot.grounding.answer_errors` checks (every id, date, number and SOP citation in the
model's text must appear in the facts of the turn or the user's question).
"""

from __future__ import annotations

import json
from typing import Any

from agent.governance.impact import describe

__all__ = [
    "ASK",
    "HELP",
    "render",
    "render_customer_orders",
    "render_late_orders",
    "render_request",
    "render_triage_header",
    "render_whatif",
    "render_why_not",
    "renders_facts",
    "unread",
]

HELP = (
    'I answer questions about orders and procedures: what is blocking an order (e.g. "what is blocking '
    "SO-100042?\"), which of a customer's orders will ship late, why an action is not recommended, "
    'what an SOP says, what an action would do to the other open orders ("what happens to other orders '
    'if we move SO-100042 to WH-2?") — and I can request approval for an action.'
)
ASK = "Which order do you mean? Give its number, e.g. SO-100042."


def unread(order_id: str) -> str:
    """The answer to a question the copilot could not read while ``order_id`` is under discussion:
    not "which order?" — the thread knows it."""
    return (
        f"I could not read that question about {order_id}. Ask e.g. what is blocking it, why not split it, "
        "which other orders of this customer are at risk, how much stock of that SKU there is by "
        "warehouse, or request approval for it."
    )


# --- fact-only renderings -----------------------------------------------------------------------


def _action(step: dict[str, Any] | None) -> str:
    if not step:
        return "nothing"
    params = ", ".join(f"{k} {v}" for k, v in (step.get("params") or {}).items() if k != "order_id")
    who = f"; approver {step['approver_role']}" if step.get("approver_role") else ""
    risk = f", {step['risk']} risk" if step.get("risk") else ""
    return f"{step['action']}{f' ({params})' if params else ''}{who}{risk}"


def _where(exc: dict[str, Any]) -> str:
    if exc.get("line_no"):
        return f" (line {exc['line_no']})"
    if exc.get("shipment_id"):
        return f" (shipment {exc['shipment_id']})"
    return ""


def render_triage_header(result: dict[str, Any]) -> str:
    """What blocks the order and what the policy recommends, from the triage facts only."""
    oid, excs = result["order_id"], result.get("exceptions") or []
    if not excs:
        return f"{oid} ({result.get('status')}) has no open exception: nothing blocks it."
    blocked = ", ".join(f"{e['type']}{_where(e)}" for e in excs)
    text = f"{oid} ({result.get('status')}) is blocked by {blocked}."
    if result.get("recommendation"):
        text += f" Recommended: {_action(result['recommendation'])}."
    return text


def render_triage_facts(result: dict[str, Any]) -> str:
    lines = [render_triage_header(result)]
    for exc in result.get("exceptions") or []:
        for fact in exc.get("evidence") or []:
            lines.append(f"- {exc['type']}: {fact}")
    return "\n".join(lines)


def render_why_not(found: dict[str, Any]) -> str:
    oid, action = found["order_id"], found["action"]
    rec = found.get("recommendation")
    if not found["candidates"]:
        kinds = ", ".join(found.get("exception_types") or []) or "none"
        return (
            f"{action} is not an option for any exception of {oid} (its exceptions: {kinds}). "
            f"Recommended: {_action(rec)}."
        )
    parts = []
    for c in found["candidates"]:
        where = f"{c['type']}{_where(c)}"
        if c.get("recommended"):
            parts.append(f"{action} is the recommended action for {where}: {c['reason']}")
        elif c["feasible"]:
            parts.append(
                f"{action} is feasible for {where} but ranked after {c.get('instead') or 'another action'}: "
                f"{c['reason']}"
            )
        else:
            parts.append(f"{action} is not feasible for {where}: {c['reason']}")
    return f"{oid}: " + " ".join(p.rstrip(".") + "." for p in parts)


def render_whatif(result: dict[str, Any]) -> str:
    """The impact of an action on the other open orders, as ``copilot whatif`` prints it."""
    return "\n".join(describe(result))


def render_request(request: dict[str, Any]) -> str:
    guard = request.get("guard") or {}
    if request.get("repeated"):  # the approval step gave back the one already waiting: none filed
        text = (
            f"{request.get('action')} on {request.get('order_id')} was already requested (request "
            f"{request.get('id')}, by {request.get('requested_by')}, {request.get('risk')} risk): "
            f"status {request.get('status')}; nothing new was filed"
        )
    else:
        text = (
            f"Requested {request.get('action')} on {request.get('order_id')} (request {request.get('id')}, "
            f"{request.get('risk')} risk): status {request.get('status')}"
        )
    if request.get("approver_role"):
        text += f", to be decided by a {request['approver_role']}"
    text += "."
    if guard and not guard.get("ok", True):
        text += " The guard blocked it: " + "; ".join(guard.get("reasons") or []) + "."
    return text


def render_note(message: dict[str, Any]) -> str:
    """A drafted customer note: where it stands, who approves it, and its text (quoted)."""
    req = message.get("request") or {}
    draft = message.get("draft") or {}
    if not req:
        return f"I could not file a note about {message.get('order_id')}: {message.get('error') or message.get('status')}."
    how = (
        "the fact-only template (the model's draft did not pass the check)"
        if draft.get("fallback")
        else "drafted from the facts"
    )
    body = "\n".join(f"> {line}" for line in (req.get("body") or "").splitlines())
    return (
        f"Note {message['id']} to the customer about {message.get('order_id')} is {req.get('status')}, "
        f"{how}; a {req.get('approver_role')} approves it before it is sent (request {req.get('id')}).\n"
        f"> Subject: {req.get('subject')}\n{body}"
    )


def render_late_orders(found: dict[str, Any]) -> str:
    who = found.get("customer") or "the customer"
    at_risk = found.get("at_risk") or []
    if not found.get("known", True):
        return f"No customer matching {who!r} has any orders."
    if not found.get("open_orders"):
        return f"{who} has no open orders."
    if not at_risk:
        return f"None of {who}'s {found['open_orders']} open orders has an exception: all are on track."
    lines = [f"{len(at_risk)} of {who}'s {found['open_orders']} open orders are at risk of shipping late:"]
    for o in at_risk:
        lines.append(
            f"- {o['order_id']} (promised {o.get('promised_date') or 'no date'}): "
            f"{', '.join(o['exceptions'])}; recommended {o.get('recommendation') or 'nothing'}"
        )
    if found.get("more"):
        lines.append(f"(only the first {found['checked']} open orders were checked)")
    return "\n".join(lines)


def render_customer_orders(found: dict[str, Any]) -> str:
    """A customer's (other) open orders with what blocks each, from the triage of each."""
    who = found.get("customer") or "the customer"
    other = " other" if found.get("excluded") else ""
    if not found.get("known", True):
        return f"No customer matching {who!r} has any orders."
    orders = found.get("orders") or []
    if not orders:
        return f"{who} has no{other} open orders" + (f" besides {found['excluded']}." if other else ".")
    head = f"{who} has {len(orders)}{other} open orders"
    head += f" besides {found['excluded']}" if other else ""
    head += f"; {found.get('at_risk_count', 0)} at risk of shipping late:"
    lines = [head]
    for o in orders:
        state = (
            f"at risk: {', '.join(o['exceptions'])}; recommended {o.get('recommendation') or 'nothing'}"
            if o.get("at_risk")
            else "on track, no open exception"
        )
        lines.append(
            f"- {o['order_id']} ({o['status']}, promised {o.get('promised_date') or 'no date'}): {state}"
        )
    if found.get("more"):
        lines.append("(only the first 50 open orders of each status were checked)")
    return "\n".join(lines)


def _render_stock(result: dict[str, Any]) -> str:
    t = result.get("totals") or {}
    head = (
        f"{result['sku']} ({result.get('description')}, {result.get('status')}): {t.get('available')} available "
        f"of {t.get('on_hand')} on hand in {result.get('warehouse_count')} warehouses"
    )
    rows = [
        f"- {w['warehouse_id']} ({w.get('region')}): {w['available']} available ({w['on_hand']} on hand, "
        f"{w['allocated']} allocated)"
        for w in result.get("warehouses") or []
    ]
    return "\n".join([head + (":" if rows else "; no warehouse holds it."), *rows])


def _render_waiting(result: dict[str, Any]) -> str:
    head = (
        f"{result['po_id']} ({result.get('qty')} × {result.get('sku')} to {result.get('warehouse_id')}, "
        f"expected {result.get('expected_date') or 'no date'}, {result.get('status')})"
    )
    rows = result.get("waiting") or []
    if not rows:
        return f"{head}: no open order is waiting on it."
    lines = [
        f"{head}: {len(rows)} open order lines wait on it ({result.get('total_backordered_qty')} backordered):"
    ]
    lines += [
        f"- {w['order_id']} line {w['line_no']} ({w.get('customer_name') or w.get('customer_id')}, promised "
        f"{w.get('promised_date') or 'no date'}): {w['backorder_qty']} backordered"
        + ("; the PO arrives after the promised date" if w.get("late") else "")
        for w in rows
    ]
    return "\n".join(lines)


def _render_credit(result: dict[str, Any]) -> str:
    parts = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in result.items()
        if k not in ("customer_id", "name") and v is not None and not isinstance(v, dict | list)
    ]
    return f"{result.get('name') or ''} ({result.get('customer_id')}): " + "; ".join(parts) + "."


def _render_pos(result: dict[str, Any]) -> str:
    rows = result.get("purchase_orders") or []
    if not rows:
        return f"No open purchase order for {result['sku']}."
    return "\n".join(
        [f"{len(rows)} open purchase orders for {result['sku']} ({result.get('total_open_qty')} units):"]
        + [
            f"- {p['po_id']}: {p['qty']} to {p.get('warehouse_id')}, expected {p.get('expected_date') or 'no date'}"
            f" from {p.get('supplier_name') or p.get('supplier_id')}"
            + (", expedite requested" if p.get("expedite_requested") else "")
            for p in rows
        ]
    )


def _render_shipments(result: dict[str, Any]) -> str:
    rows = result.get("shipments") or []
    if not rows:
        return f"{result['order_id']} has no shipment yet (promised {result.get('promised_date')})."
    return "\n".join(
        [f"{result['order_id']} (promised {result.get('promised_date')}) has {len(rows)} shipments:"]
        + [
            f"- {s['shipment_id']}: {s.get('status')} with {s.get('carrier_name') or s.get('carrier_id')} "
            f"({s.get('carrier_status')}), ETA {s.get('eta') or 'none'}"
            + (", after the promised date" if s.get("eta_after_promised") else "")
            for s in rows
        ]
    )


def _render_substitutes(result: dict[str, Any]) -> str:
    subs = result.get("substitutes") or []
    if not subs:
        return f"{result['sku']} has no approved substitute."
    return "\n".join(
        [f"Approved substitutes of {result['sku']}:"]
        + [f"- {x['sku']} ({x.get('description')}): {x.get('available_total')} available" for x in subs]
    )


_RENDER = {
    "get_stock": _render_stock,
    "get_orders_waiting_on_po": _render_waiting,
    "get_customer_credit": _render_credit,
    "get_open_purchase_orders": _render_pos,
    "get_order_shipments": _render_shipments,
    "get_substitutes": _render_substitutes,
}


def _compact(result: Any, limit: int = 1200) -> str:
    text = json.dumps(result, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + " …"


def renders_facts(tool: str) -> bool:
    """Whether ``tool``'s result has a fact renderer that answers its question as it stands (a SKU's
    stock by warehouse, a customer's credit, a PO's waiting orders, ...): such an answer is shown at
    once, without a model call to phrase it."""
    return tool in _RENDER


def render(tool: str, result: Any) -> str:
    """The fact-only text of one tool result."""
    if isinstance(result, str):  # an expected failure of the tool (unknown id, bad argument)
        return f"{tool}: {result}"
    if tool in _RENDER and isinstance(result, dict):
        return _RENDER[tool](result)
    if tool == "search_sops":
        passages = result.get("passages") or []
        if not passages:
            return "No SOP covers this question."
        return "\n".join(
            f"[{p['citation']}] {p['heading']}: {' '.join(p['text'].split())[:300]}" for p in passages[:3]
        )
    if tool == "search_orders":
        rows = result.get("orders") or []
        if not rows:
            return "No orders match."
        head = f"{result.get('total', len(rows))} orders match" + (
            ", the first shown:" if result.get("next_offset") else ":"
        )
        return "\n".join(
            [head]
            + [
                f"- {o['order_id']} {o.get('customer_name') or o.get('customer_id')} ({o['status']}, promised "
                f"{o.get('promised_date')}, value {o.get('order_value')} {o.get('currency') or ''}): "
                f"{', '.join(o.get('open_exceptions') or []) or 'no open exception'}"
                for o in rows[:10]
            ]
        )
    if tool == "list_open_exceptions":
        rows = result.get("exceptions") or []
        if not rows:
            return "No open exceptions match."
        return "\n".join(
            [f"{result.get('total', len(rows))} open exceptions:"]
            + [f"- {e['order_id']} {e['type']}{_where(e)}" for e in rows[:10]]
        )
    return f"{tool}: {_compact(result)}"
