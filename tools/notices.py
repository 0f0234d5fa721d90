"""When a customer notice or a supplier request is due (domain.md §7), and the facts it may use.

An executed action that changes what the customer was promised makes a customer notice due:
``UPDATE_PROMISE_DATE``, ``SPLIT_SHIPMENT``, ``APPROVE_SUBSTITUTION``, ``REASSIGN_ALLOCATION`` (to
the donor order's customer: it is their line that goes back to backorder), and ``REBOOK_CARRIER``
or ``EXPEDITE_FREIGHT`` when the shipment's eta is after the promised date. ``EXPEDITE_PO`` makes a
supplier request due.

The executor (``tools.writes.execute_request``) takes a :func:`snapshot` of what the action is
about to change (the old promised date, the line before the split or the substitution, the old
carrier) and, once the write has run, :func:`record_due` stores one ``notices`` row per recipient
in the same transaction, with the facts — and only the facts — a draft may state. Drafting and
filing them is the copilot's (``agent.comms``). What is internal never enters them: costs,
prices, margins, credit positions, other customers, SOP text, and the customer's own note (the
approver sees that quoted beside the draft; the model never reads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tools.models import (
    ActionRequest,
    Carrier,
    Customer,
    Item,
    Notice,
    Order,
    OrderLine,
    OutboxMessage,
    PurchaseOrder,
    Shipment,
    Supplier,
    Warehouse,
)

__all__ = [
    "CUSTOMER_TRIGGERS",
    "SUPPLIER_TRIGGERS",
    "customer_facts",
    "record_due",
    "snapshot",
    "stale_facts",
]

CUSTOMER_TRIGGERS = (
    "UPDATE_PROMISE_DATE",
    "SPLIT_SHIPMENT",
    "APPROVE_SUBSTITUTION",
    "REASSIGN_ALLOCATION",
    "REBOOK_CARRIER",
    "EXPEDITE_FREIGHT",
)
SUPPLIER_TRIGGERS = ("EXPEDITE_PO",)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _description(session: Session, sku: str | None) -> str | None:
    item = session.get(Item, sku) if sku else None
    return item.description if item else None


def _line(session: Session, order_id: str | None, line_no: Any) -> dict[str, Any] | None:
    line = session.get(OrderLine, (order_id, line_no)) if order_id and line_no is not None else None
    if line is None:
        return None
    return {
        "line_no": line.line_no,
        "sku": line.sku,
        "description": _description(session, line.sku),
        "qty": line.qty,
        "allocated_qty": line.allocated_qty,
        "backorder_qty": line.backorder_qty,
    }


def _shipment(session: Session, shipment_id: str | None) -> dict[str, Any] | None:
    ship = session.get(Shipment, shipment_id) if shipment_id else None
    if ship is None:
        return None
    carrier = session.get(Carrier, ship.carrier_id) if ship.carrier_id else None
    return {
        "shipment_id": ship.shipment_id,
        "order_id": ship.order_id,
        "carrier": carrier.name if carrier else ship.carrier_id,
        "service_level": ship.service_level,
        "eta": _iso(ship.eta),
    }


def snapshot(session: Session, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """What ``action`` is about to change, read before the write (empty for other actions)."""
    if action == "UPDATE_PROMISE_DATE":
        order = session.get(Order, params.get("order_id"))
        return {"promised_date": _iso(order.promised_date) if order else None}
    if action in ("SPLIT_SHIPMENT", "APPROVE_SUBSTITUTION"):
        return {"line": _line(session, params.get("order_id"), params.get("line_no"))}
    if action == "REASSIGN_ALLOCATION":
        return {"line": _line(session, params.get("from_order_id"), params.get("from_line_no"))}
    if action in ("REBOOK_CARRIER", "EXPEDITE_FREIGHT"):
        return {"shipment": _shipment(session, params.get("shipment_id"))}
    return {}


def customer_facts(session: Session, order_id: str) -> dict[str, Any]:
    """The facts every customer notice about ``order_id`` may state: the order, its open lines, the
    promised date, the customer's name and language."""
    order = session.get(Order, order_id)
    customer = session.get(Customer, order.customer_id) if order and order.customer_id else None
    lines = []
    for line in sorted(order.lines if order else [], key=lambda x: x.line_no):
        if line.status == "cancelled":
            continue
        lines.append(
            {
                "line_no": line.line_no,
                "sku": line.sku,
                "description": _description(session, line.sku),
                "qty": line.qty,
                "status": line.status,
                "backorder_qty": line.backorder_qty,
            }
        )
    return {
        "kind": "customer",
        "order_id": order_id,
        "customer_name": customer.name if customer else None,
        "language": (customer.language or "").strip() or None if customer else None,
        "promised_date": _iso(order.promised_date) if order else None,
        "lines": lines,
    }


# The changes whose notice states the order's promised date as it is (domain.md §7 facts).
_STATES_PROMISED_DATE = ("order_status", "backordered")


def _last_told_date(session: Session, order_id: str, before: str | None) -> str | None:
    """The promised date the customer of ``order_id`` was last told: ``before`` (the date this new
    one replaces), unless the notices of the dates in between never left — a notice of a new date
    that was not queued is superseded by this one (its date no longer holds: ``stale_facts``), so
    the customer still holds the date that notice replaced. Walking back from the latest notice of
    a new date, to the first one whose message went out (queued or sent)."""
    told = before
    earlier = _customer_notices_latest_first(session, order_id)
    for notice in earlier:
        facts = notice.facts if isinstance(notice.facts, dict) else {}
        if facts.get("change") in _STATES_PROMISED_DATE:
            if facts.get("promised_date") == told and _left(session, notice):
                break  # an update on the order that went out told the customer this date
            continue
        if facts.get("change") != "new_promised_date":
            continue
        if facts.get("new_promised_date") != told:
            break  # a date set without a notice since (none was due): the chain ends there
        if _left(session, notice):
            break  # the customer was told this notice's new date
        told = facts.get("old_promised_date")
    return told


def _customer_notices_latest_first(session: Session, order_id: str) -> Iterable[Notice]:
    return session.scalars(
        select(Notice)
        .where(Notice.order_id == order_id, Notice.kind == "customer")
        .order_by(Notice.id.desc())
    )


def _left(session: Session, notice: Notice) -> bool:
    """Whether the message filed for ``notice`` went out (queued in the outbox, or sent)."""
    return notice.request_id is not None and (
        session.scalar(select(OutboxMessage.id).where(OutboxMessage.request_id == notice.request_id).limit(1))
        is not None
    )


def _untold_backorder(session: Session, order_id: str, was: dict[str, Any]) -> int:
    """The units earlier reassignments put on backorder on the donor line ``was`` (as it was before
    this one) whose notices never left: superseded by this one (the line changed since: their facts
    no longer hold), so this notice tells the customer those units too. Walking back from the latest
    notice of the line while each one's line is the state the next one started from."""
    backorder, untold = was.get("backorder_qty"), 0
    earlier = _customer_notices_latest_first(session, order_id)
    for notice in earlier:
        facts = notice.facts if isinstance(notice.facts, dict) else {}
        line = facts.get("line") or {}
        if facts.get("change") != "backordered" or line.get("line_no") != was.get("line_no"):
            continue
        if backorder is None or line.get("backorder_qty") != backorder or _left(session, notice):
            break  # told, or the line moved without a notice in between: the chain ends there
        qty = facts.get("backordered_qty") or 0
        untold, backorder = untold + qty, backorder - qty
    return untold


def _customer_change(session: Session, req: ActionRequest, before: dict[str, Any]) -> dict | None:
    """(order the notice goes to, what changed) for a customer trigger, or None when none is due."""
    p = req.params
    if req.action == "UPDATE_PROMISE_DATE":
        told = _last_told_date(session, p["order_id"], before.get("promised_date"))
        if told == p["new_promised_date"]:
            return None  # the date the customer was promised stands: nothing changed to tell
        return {
            "order_id": p["order_id"],
            "change": "new_promised_date",
            "old_promised_date": told,
            "new_promised_date": p["new_promised_date"],
        }
    if req.action == "SPLIT_SHIPMENT":
        line = _line(session, p["order_id"], p["line_no"]) or {}
        return {
            "order_id": p["order_id"],
            "change": "partial_shipment",
            "line": {**(before.get("line") or {}), **line},
            # what ships now is all the line has allocated, not only this split's ship_qty (a line
            # partly allocated before: 5 + 2 of 8 ship now, 1 follows)
            "ships_now_qty": line.get("allocated_qty", p["ship_qty"]),
            "backorder_qty": line.get("backorder_qty"),
        }
    if req.action == "APPROVE_SUBSTITUTION":
        old = before.get("line") or {}
        return {
            "order_id": p["order_id"],
            "change": "substitution",
            "line_no": p["line_no"],
            "ordered_sku": old.get("sku"),
            "ordered_description": old.get("description"),
            "substitute_sku": p["substitute_sku"],
            "substitute_description": _description(session, p["substitute_sku"]),
            "qty": old.get("qty"),
        }
    if req.action == "REASSIGN_ALLOCATION":
        line = _line(session, p["from_order_id"], p["from_line_no"]) or {}
        was = before.get("line") or {}
        return {
            "order_id": p["from_order_id"],
            "change": "backordered",
            "line": {**was, **line},
            "backordered_qty": p["qty"] + _untold_backorder(session, p["from_order_id"], was),
        }
    if req.action in ("REBOOK_CARRIER", "EXPEDITE_FREIGHT"):
        ship = _shipment(session, p["shipment_id"]) or {}
        order = session.get(Order, ship.get("order_id")) if ship.get("order_id") else None
        if order is None or not ship.get("eta") or order.promised_date is None:
            return None
        if dt.date.fromisoformat(ship["eta"]) <= order.promised_date:
            return None  # the customer still gets what was promised: nothing to tell
        old = before.get("shipment") or {}
        return {
            "order_id": order.order_id,
            "change": "new_carrier" if req.action == "REBOOK_CARRIER" else "expedited",
            "shipment_id": ship["shipment_id"],
            "carrier": ship["carrier"],
            "previous_carrier": old.get("carrier"),
            "service_level": ship["service_level"],
            "eta": ship["eta"],
        }
    return None


def supplier_facts(session: Session, po_id: str, order_id: str | None) -> dict[str, Any]:
    """What a supplier request may state: the purchase order, its item and quantity, its expected
    date, the date it is needed by (the order's promised date) and the receiving warehouse."""
    po = session.get(PurchaseOrder, po_id)
    supplier = session.get(Supplier, po.supplier_id) if po and po.supplier_id else None
    warehouse = session.get(Warehouse, po.warehouse_id) if po and po.warehouse_id else None
    order = session.get(Order, order_id) if order_id else None
    return {
        "kind": "supplier",
        "po_id": po_id,
        "supplier_name": supplier.name if supplier else None,
        "language": None,
        "sku": po.sku if po else None,
        "description": _description(session, po.sku) if po else None,
        "qty": po.qty if po else None,
        "expected_date": _iso(po.expected_date) if po else None,
        "needed_by": _iso(order.promised_date) if order else None,
        "deliver_to": warehouse.name if warehouse else (po.warehouse_id if po else None),
    }


def _reason(change: dict[str, Any]) -> str:
    kind = change.get("change")
    return {
        "new_promised_date": f"promised date {change.get('old_promised_date')} -> {change.get('new_promised_date')}",
        "partial_shipment": f"line {change.get('line', {}).get('line_no')} ships {change.get('ships_now_qty')} now",
        "substitution": f"line {change.get('line_no')}: {change.get('ordered_sku')} -> {change.get('substitute_sku')}",
        "backordered": f"line {change.get('line', {}).get('line_no')}: {change.get('backordered_qty')} back to backorder",
        "new_carrier": f"shipment {change.get('shipment_id')} rebooked, eta {change.get('eta')}",
        "expedited": f"shipment {change.get('shipment_id')} expedited, eta {change.get('eta')}",
    }.get(str(kind), str(kind or ""))


def record_due(
    session: Session, req: ActionRequest, before: dict[str, Any], *, now: dt.datetime | None = None
) -> list[Notice]:
    """Store the notices ``req`` (just executed) makes due, inside the caller's transaction.

    At most one per (request, kind, recipient order): a retried execution finds the first."""
    now = now or dt.datetime.now(dt.UTC)
    due: list[tuple[str, str | None, str | None, dict[str, Any], str]] = []
    if req.action in CUSTOMER_TRIGGERS:
        change = _customer_change(session, req, before)
        if change is not None:
            facts = {**customer_facts(session, change["order_id"]), **change}
            due.append(("customer", change["order_id"], None, facts, f"{req.action}: {_reason(change)}"))
    elif req.action in SUPPLIER_TRIGGERS:
        facts = supplier_facts(session, req.params["po_id"], req.order_id)
        facts["change"] = "expedite_requested"
        due.append(
            ("supplier", req.order_id, req.params["po_id"], facts, f"{req.action}: expedite requested")
        )
    notices = []
    for kind, order_id, po_id, facts, reason in due:
        existing = session.scalar(
            select(Notice).where(
                Notice.trigger_request_id == req.id, Notice.kind == kind, Notice.order_id == order_id
            )
        )
        if existing is not None:
            notices.append(existing)
            continue
        notice = Notice(
            kind=kind,
            trigger_request_id=req.id,
            trigger_action=req.action,
            exception_type=req.exception_type,
            order_id=order_id,
            po_id=po_id,
            reason=reason,
            facts=facts,
            status="due",
            due_at=now,
        )
        session.add(notice)
        session.flush()
        notices.append(notice)
    return notices


def stale_facts(session: Session, facts: Any, text: str = "") -> list[str]:
    """Why a notice drafted from ``facts`` would no longer tell the truth (empty: its facts hold).

    The facts are read when the change is executed; the message leaves only once a person approves
    it, maybe after another change of the same order (a second new date, the rest of a split line
    allocated, the shipment rebooked again, the purchase order received). What the message is about
    — the new date, the substitute on the line, the quantities shipping and on backorder, the
    carrier and eta, the purchase order's date and quantity — must still be what the records say;
    the promised date too, when the text states the one drafted. ``text``: subject and body."""
    if not isinstance(facts, dict):
        return []
    change, out = facts.get("change"), []
    if facts.get("kind") == "supplier":
        po = session.get(PurchaseOrder, facts.get("po_id")) if facts.get("po_id") else None
        if po is None or po.status != "open":
            return [
                f"purchase order {facts.get('po_id')} is {po.status if po else 'gone'}: nothing to expedite"
            ]
        if (_iso(po.expected_date), po.qty) != (facts.get("expected_date"), facts.get("qty")):
            out.append(
                f"purchase order {po.po_id} is now {po.qty} expected {_iso(po.expected_date)}, "
                f"not {facts.get('qty')} expected {facts.get('expected_date')}"
            )
        return out
    order = session.get(Order, facts.get("order_id")) if facts.get("order_id") else None
    if order is None or order.status == "cancelled":
        return [f"order {facts.get('order_id')} is {order.status if order else 'gone'}"]
    promised, drafted = _iso(order.promised_date), facts.get("promised_date")
    if promised != drafted and (change == "new_promised_date" or (drafted and drafted in text)):
        out.append(f"the promised date of {order.order_id} is now {promised}, not {drafted}")
    line_no = (facts.get("line") or {}).get("line_no") if change != "substitution" else facts.get("line_no")
    now = _line(session, order.order_id, line_no) if line_no is not None else None
    if change == "substitution" and (now or {}).get("sku") != facts.get("substitute_sku"):
        out.append(
            f"line {line_no} of {order.order_id} is now {(now or {}).get('sku')}, not {facts.get('substitute_sku')}"
        )
    if change in ("partial_shipment", "backordered"):
        was = facts.get("line") or {}
        keys = ("allocated_qty", "backorder_qty")
        if now is None or any(now.get(k) != was.get(k) for k in keys):
            out.append(
                f"line {line_no} of {order.order_id} now has "
                + ", ".join(f"{k} {(now or {}).get(k)}" for k in keys)
                + ", not "
                + ", ".join(f"{k} {was.get(k)}" for k in keys)
            )
    if change in ("new_carrier", "expedited"):
        ship = _shipment(session, facts.get("shipment_id")) or {}
        for key in ("carrier", "service_level", "eta"):
            if ship.get(key) != facts.get(key):
                out.append(
                    f"shipment {facts.get('shipment_id')}'s {key} is now {ship.get(key)}, not {facts.get(key)}"
                )
    if change == "order_status":
        current = customer_facts(session, order.order_id)["lines"]
        if current != facts.get("lines"):
            out.append(f"the lines of {order.order_id} changed since the draft")
    return out
