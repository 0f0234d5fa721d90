"""The WRITE operations of domain.md §3: the only code that changes ERP records.

The message actions of §7 (``NOTIFY_CUSTOMER``, ``REQUEST_SUPPLIER``) change no ERP record: their
execution queues one message in the outbox (``tools.outbox``) under the same approval and
idempotency rules. An execution that changes what a customer was promised (or expedites a
purchase order) records the notice it makes due (``tools.notices``) in the same transaction.

Only the executor (``agent.governance.requests``) calls :func:`execute_request`; nothing else in the
product writes to the ERP tables. Each action has one function that checks its preconditions on
the records as they are now and applies its effect; :func:`check` runs the same checks without
writing (the guard uses it at request time, the executor again at execution time, so stock that
went away in between fails the execution safely, with the reason).

:func:`execute_request` runs inside the caller's transaction and refuses unless an approval of
exactly these parameters exists (``ESCALATE`` excepted: it changes no ERP record and needs none),
and only on records of the request's own order (``tools.scope``, checked again here). A write the
database refuses (a value out of a column's range, a constraint) records a ``failed`` execution
with the database's reason, like a precondition that no longer holds: it is never left approved.
Its idempotency key is derived from the approval; ``executions`` has a unique request id and a
unique key, so a second run of the same approval (a double click, a retry, a resumed graph, 50
concurrent approvals) finds or collides with the first and changes nothing.

Parameters arrive normalised by the guard: ints as int, dates as ISO text, money as text with two
decimals (``"12.50"``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tools import notices, outbox, rules
from tools.errors import Conflict, Forbidden, NotFound, OrderNotFound, PreconditionFailed
from tools.models import (
    ActionRequest,
    Approval,
    Carrier,
    Customer,
    ExceptionRecord,
    Execution,
    Inventory,
    Item,
    Order,
    OrderLine,
    PurchaseOrder,
    Shipment,
    Substitute,
    Warehouse,
)
from tools.rules import SHIP_TO_FIELDS
from tools.scope import donor_problems, scope_problems

__all__ = [
    "SHIP_TO_FIELDS",
    "WRITE_ACTIONS",
    "apply",
    "check",
    "database_refusal",
    "escalation_targets",
    "execute_request",
    "idempotency_key",
    "missing_inputs",
    "params_hash",
]


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``params`` (sorted keys, no spaces)."""
    body = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def idempotency_key(request_id: int, approval_id: int | None, phash: str) -> str:
    """Derived from the approval (or, for ESCALATE, the request): the same approval, the same key."""
    basis = f"approval:{approval_id}:{phash}" if approval_id is not None else f"escalate:{request_id}:{phash}"
    return hashlib.sha256(basis.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# Reading what a write needs (and failing with a reason a person can read)
# ------------------------------------------------------------------------------------------------


def _order(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise PreconditionFailed(str(OrderNotFound(order_id)))
    if order.status not in rules.OPEN_ORDER_STATUSES:
        raise PreconditionFailed(f"order {order_id} is {order.status}: nothing may change on it")
    return order


def _line(session: Session, order: Order, line_no: int) -> OrderLine:
    line = session.get(OrderLine, (order.order_id, line_no))
    if line is None:
        raise PreconditionFailed(f"order {order.order_id} has no line {line_no}")
    if rules.is_closed(line.status):
        raise PreconditionFailed(f"line {line_no} of {order.order_id} is {line.status}")
    return line


def _available(session: Session, sku: str | None, warehouse_id: str | None) -> tuple[int, Inventory | None]:
    if not sku or not warehouse_id:
        return 0, None
    inv = session.get(Inventory, (sku, warehouse_id))
    return (inv.on_hand - inv.allocated if inv else 0), inv


def _open_qty(line: OrderLine) -> int:
    return line.qty - line.allocated_qty


def _ship_from(order: Order, line: OrderLine) -> str | None:
    return rules.ship_from(line.warehouse_id, order.warehouse_id)


def _customer(session: Session, order: Order) -> Customer:
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    if customer is None:
        raise PreconditionFailed(f"order {order.order_id} has no customer record")
    return customer


def _export_hold(session: Session, order: Order, line: OrderLine, warehouse_id: str | None) -> bool:
    """Whether the line, shipping from ``warehouse_id``, holds the order for export control
    (:func:`tools.rules.export_hold`, the reading detection and recommendation apply)."""
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    item = session.get(Item, line.sku) if line.sku else None
    wh = session.get(Warehouse, warehouse_id) if warehouse_id else None
    return rules.export_hold(
        export_controlled=item is not None and item.export_controlled,
        export_license=customer.export_license if customer is not None else None,
        ship_to_country=order.ship_to_country,
        origin_country=wh.country if wh is not None else None,
    )


def _compliance_hold(session: Session, order: Order) -> str | None:
    """The first open line that holds the order for export control (domain.md §2), if any."""
    for line in order.lines:
        if not rules.is_closed(line.status) and _export_hold(session, order, line, _ship_from(order, line)):
            return f"line {line.line_no} ({line.sku}) is export controlled and ships across a border without a licence"
    return None


def review_holds(session: Session, held: Iterable[str]) -> dict[str, int]:
    """Of the ``held`` orders (ids of orders whose status is ``held``), those a ``COMPLIANCE_REVIEW``
    holds: order id -> the last executed review request. The review put the order on ``held`` and it
    is held still; no catalog action concludes a review (domain.md §3), so no action lifts that hold
    (a credit release would: it sets ``released``). The order leaves it when its status leaves
    ``held`` (the ERP's word). One query per ``IN_CHUNK`` ids; none for none."""
    out: dict[str, int] = {}
    for part in rules.in_chunks(held):
        rows = session.execute(
            select(ActionRequest.order_id, func.max(ActionRequest.id))
            .where(
                ActionRequest.order_id.in_(part),
                ActionRequest.action == "COMPLIANCE_REVIEW",
                ActionRequest.status == "executed",
            )
            .group_by(ActionRequest.order_id)
        )
        out.update((str(order_id), int(request_id)) for order_id, request_id in rows)
    return out


def review_hold(session: Session, order: Order) -> int | None:
    """The executed review request that holds ``order`` (:func:`review_holds`), if any."""
    return review_holds(session, [order.order_id]).get(order.order_id) if order.status == "held" else None


# ------------------------------------------------------------------------------------------------
# The actions: each checks, then (when write=True) applies; returns what it changed
# ------------------------------------------------------------------------------------------------

Changes = dict[str, Any]


def _reallocate(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    line = _line(session, order, p["line_no"])
    here, to = _ship_from(order, line), p["to_warehouse_id"]
    target = session.get(Warehouse, to)
    if target is None:
        raise PreconditionFailed(f"warehouse {to} not found")
    if to == here:
        raise PreconditionFailed(f"line {line.line_no} already ships from {to}")
    need = line.qty  # the whole line moves: its qty is allocated at the target (domain.md §3)
    have, inv = _available(session, line.sku, to)
    if inv is None or have < need:
        raise PreconditionFailed(f"{to} has {have} {line.sku} available, the line's qty is {need}")
    _customer(session, order)
    if _export_hold(session, order, line, to):
        raise PreconditionFailed(
            f"{line.sku} is export controlled: shipping from {to} ({target.country}) to "
            f"{order.ship_to_country} would raise a COMPLIANCE_HOLD"
        )
    if write:
        _, old = _available(session, line.sku, here)
        if old is not None and line.allocated_qty:
            old.allocated -= line.allocated_qty
        inv.allocated += line.qty
        line.warehouse_id, line.allocated_qty, line.backorder_qty, line.status = to, line.qty, 0, "allocated"
    return {
        "order_lines": f"{order.order_id}/{line.line_no}",
        "from_warehouse_id": here,
        "to_warehouse_id": to,
        "allocated": line.qty,
    }


def _reassign(session: Session, p: dict[str, Any], write: bool) -> Changes:
    """domain.md §6: units a lower-priority order's line holds at the same warehouse go to this
    line; inventory is unchanged (the units stay allocated, to another line)."""
    order = _order(session, p["order_id"])
    line = _line(session, order, p["line_no"])
    problems = donor_problems(session, order, p)  # the one home of the donor rule (tools.scope)
    if problems:
        raise PreconditionFailed(problems[0])
    donor_order = session.get(Order, p["from_order_id"])
    donor = session.get(OrderLine, (p["from_order_id"], p["from_line_no"]))
    assert donor_order is not None and donor is not None  # donor_problems found both
    here = _ship_from(order, line)
    qty = p["qty"]
    if qty <= 0:
        raise PreconditionFailed(f"qty must be positive, got {qty}")
    if donor.allocated_qty < qty:
        raise PreconditionFailed(
            f"donor line {donor.line_no} of {donor_order.order_id} holds {donor.allocated_qty} "
            f"{donor.sku} allocated now, fewer than qty {qty}"
        )
    if qty > _open_qty(line):
        raise PreconditionFailed(
            f"qty {qty} exceeds the open quantity {_open_qty(line)} of line {line.line_no}"
        )
    have, _ = _available(session, line.sku, here)
    if qty > _open_qty(line) - max(0, have):
        # domain.md §6: a lower-priority order gives up only the shortfall (open quantity −
        # available); stock that is free at the warehouse is not taken from another customer
        raise PreconditionFailed(
            f"qty {qty} exceeds the shortfall {_open_qty(line) - max(0, have)} of line {line.line_no} "
            f"(open quantity {_open_qty(line)}, {have} {line.sku} available at {here}): only the "
            "shortfall is taken from another order"
        )
    if write:
        donor.allocated_qty -= qty
        donor.backorder_qty += qty
        donor.status = "backordered"
        line.allocated_qty += qty
        line.backorder_qty = max(0, line.backorder_qty - qty)
        if line.allocated_qty == line.qty:
            line.status = "allocated"
    return {
        "order_lines": [f"{order.order_id}/{line.line_no}", f"{donor_order.order_id}/{donor.line_no}"],
        "qty": qty,
        "sku": line.sku,
        "warehouse_id": here,
        "from_order_id": donor_order.order_id,
    }


def _substitute(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    line = _line(session, order, p["line_no"])
    sub = p["substitute_sku"]
    if line.original_sku:
        raise PreconditionFailed(
            f"line {line.line_no} was already substituted ({line.original_sku} -> {line.sku})"
        )
    row = session.get(Substitute, (line.sku, sub)) if line.sku else None
    if row is None:
        raise PreconditionFailed(f"{sub} is not a listed substitute of {line.sku}")
    if not row.approved:
        raise PreconditionFailed(f"{sub} is not an approved substitute of {line.sku}")
    if session.get(Item, sub) is None:
        raise PreconditionFailed(f"substitute {sub} is not in items")
    if not _customer(session, order).allow_substitutions:
        raise PreconditionFailed(f"customer {order.customer_id} does not allow substitutions")
    here, need = _ship_from(order, line), _open_qty(line)
    have, inv = _available(session, sub, here)
    # A missing inventory row is 0 available (domain.md §4 reads it so): a line with nothing open
    # (a discontinued item already allocated) is substituted with no stock row of the substitute.
    if have < need:
        raise PreconditionFailed(f"{here} has {have} {sub} available, the line's open quantity is {need}")
    if write:
        if inv is not None:
            inv.allocated += need
        line.original_sku, line.sku = line.sku, sub
        line.allocated_qty, line.backorder_qty, line.status = line.qty, 0, "allocated"
    return {"order_lines": f"{order.order_id}/{line.line_no}", "substitute_sku": sub, "allocated": need}


def _split(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    line = _line(session, order, p["line_no"])
    if not _customer(session, order).allow_partial_shipments:
        raise PreconditionFailed(f"customer {order.customer_id} does not allow partial shipments")
    qty, need, here = p["ship_qty"], _open_qty(line), _ship_from(order, line)
    if not 0 < qty < need:
        # domain.md §3: a split ships part now and backorders the rest (status `backordered`); all of
        # the open quantity is not a split, it is an allocation
        raise PreconditionFailed(
            f"ship_qty must be between 1 and {need - 1} (a split ships part of the open quantity {need} "
            f"and backorders the rest), got {qty}"
        )
    have, inv = _available(session, line.sku, here)
    if inv is None or have < qty:
        raise PreconditionFailed(f"{here} has {have} {line.sku} available, fewer than ship_qty {qty}")
    if write:
        inv.allocated += qty
        line.allocated_qty += qty
        line.backorder_qty = line.qty - line.allocated_qty
        line.status = "backordered"
    return {"order_lines": f"{order.order_id}/{line.line_no}", "ship_qty": qty, "backorder_qty": need - qty}


def _promise(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    new = dt.date.fromisoformat(p["new_promised_date"])
    if order.order_date and new < order.order_date:
        raise PreconditionFailed(f"new promised date {new} is before the order date {order.order_date}")
    old = order.promised_date
    if write:
        order.promised_date = new
    return {"orders": order.order_id, "promised_date": [old and old.isoformat(), new.isoformat()]}


def _on_credit_hold(session: Session, order: Order) -> bool:
    """Whether a credit hold holds on the order now (domain.md §2 CREDIT_HOLD)."""
    customer = session.get(Customer, order.customer_id) if order.customer_id else None
    if not rules.credit_hold_applies(order.status, order.credit_released) or customer is None:
        return False
    return rules.CreditPosition.of(customer, order.lines).holds


def _release_credit(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    if order.credit_released:
        raise PreconditionFailed(f"order {order.order_id} is already credit released")
    if not _on_credit_hold(session, order):
        # releasing an order that is not held would pre-authorise its credit: a later overage or
        # overdue balance would no longer hold it
        raise PreconditionFailed(
            f"order {order.order_id} is not on credit hold (status {order.status}; no credit "
            "flag, within the credit limit, nothing overdue): there is nothing to release"
        )
    held = _compliance_hold(session, order)
    if held:
        raise PreconditionFailed(f"not while a COMPLIANCE_HOLD holds: {held}")
    review = review_hold(session, order)
    if review is not None:  # releasing it would set it `released`: the review's hold lifted by credit
        raise PreconditionFailed(
            f"order {order.order_id} is held for a compliance review (request {review}): a credit "
            "release does not conclude a review; the hold stays until the review is concluded"
        )
    if write:
        order.credit_released, order.status = True, "released"
    return {"orders": order.order_id, "credit_released": True, "status": "released"}


def _correct_price(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    line = _line(session, order, p["line_no"])
    price = Decimal(p["new_unit_price"])
    if price <= 0:
        raise PreconditionFailed(f"new_unit_price must be positive, got {price}")
    old = line.unit_price
    if write:
        line.unit_price = price
    return {"order_lines": f"{order.order_id}/{line.line_no}", "unit_price": [f"{old:.2f}", f"{price:.2f}"]}


def _shipment(session: Session, shipment_id: str) -> Shipment:
    ship = session.get(Shipment, shipment_id)
    if ship is None:
        raise PreconditionFailed(f"shipment {shipment_id} not found")
    if ship.status == "delivered":
        raise PreconditionFailed(f"shipment {shipment_id} is already delivered")
    order = session.get(Order, ship.order_id) if ship.order_id else None
    if order is not None and order.status not in rules.OPEN_ORDER_STATUSES:
        # freight of a shipped or cancelled order is not worth rebooking or expediting
        raise PreconditionFailed(
            f"shipment {shipment_id} belongs to {order.order_id}, which is {order.status}"
        )
    return ship


def _rebook(session: Session, p: dict[str, Any], write: bool) -> Changes:
    ship = _shipment(session, p["shipment_id"])
    carrier = session.get(Carrier, p["carrier_id"])
    if carrier is None:
        raise PreconditionFailed(f"carrier {p['carrier_id']} not found")
    if carrier.carrier_id == ship.carrier_id:
        raise PreconditionFailed(f"shipment {ship.shipment_id} is already with {carrier.carrier_id}")
    if carrier.status == "disrupted":
        raise PreconditionFailed(f"carrier {carrier.carrier_id} is disrupted")
    old = ship.carrier_id
    if write:
        ship.carrier_id, ship.status = carrier.carrier_id, "booked"
    return {"shipments": ship.shipment_id, "carrier_id": [old, carrier.carrier_id], "status": "booked"}


def _expedite_freight(session: Session, p: dict[str, Any], write: bool) -> Changes:
    ship = _shipment(session, p["shipment_id"])
    if ship.service_level == "express":
        raise PreconditionFailed(f"shipment {ship.shipment_id} already ships express")
    if write:
        ship.service_level = "express"
    return {"shipments": ship.shipment_id, "service_level": "express"}


def _expedite_po(session: Session, p: dict[str, Any], write: bool) -> Changes:
    po = session.get(PurchaseOrder, p["po_id"])
    if po is None:
        raise PreconditionFailed(f"purchase order {p['po_id']} not found")
    if po.status != "open":
        raise PreconditionFailed(f"purchase order {po.po_id} is {po.status}")
    if po.expedite_requested:
        raise PreconditionFailed(f"purchase order {po.po_id} is already being expedited")
    if write:
        po.expedite_requested = True
    return {"purchase_orders": po.po_id, "expedite_requested": True}


def _fix_master_data(session: Session, p: dict[str, Any], write: bool, *, partial: bool = False) -> Changes:
    order = _order(session, p["order_id"])
    supplied = {f: p[f] for f in SHIP_TO_FIELDS if f in p}
    for field, value in supplied.items():
        if not rules.is_empty(getattr(order, field)):
            raise PreconditionFailed(
                f"{field} of {order.order_id} is not empty ({getattr(order, field)!r}): "
                "FIX_MASTER_DATA fills empty fields only"
            )
        if rules.is_empty(value):
            raise PreconditionFailed(f"{field} needs a value")
    missing = [f for f in SHIP_TO_FIELDS if rules.is_empty(getattr(order, f)) and f not in supplied]
    if missing and not partial:
        raise PreconditionFailed(
            f"values needed for the empty fields {', '.join(missing)} "
            "(the approver supplies them: edit the request)"
        )
    if write:
        for field, value in supplied.items():
            setattr(order, field, value.strip())
    return {"orders": order.order_id, **{f: v.strip() for f, v in supplied.items()}}


def _compliance_review(session: Session, p: dict[str, Any], write: bool) -> Changes:
    order = _order(session, p["order_id"])
    if write:
        order.status = "held"
    return {"orders": order.order_id, "status": "held"}


def missing_inputs(session: Session, action: str, params: dict[str, Any]) -> list[str]:
    """The values the approver still has to supply (FIX_MASTER_DATA: the empty ship-to fields)."""
    if action != "FIX_MASTER_DATA":
        return []
    order = session.get(Order, params.get("order_id"))
    if order is None:
        return []
    return [f for f in SHIP_TO_FIELDS if rules.is_empty(getattr(order, f)) and rules.is_empty(params.get(f))]


WRITE_ACTIONS: dict[str, Callable[[Session, dict[str, Any], bool], Changes]] = {
    "REALLOCATE_WAREHOUSE": _reallocate,
    "APPROVE_SUBSTITUTION": _substitute,
    "SPLIT_SHIPMENT": _split,
    "UPDATE_PROMISE_DATE": _promise,
    "RELEASE_CREDIT_HOLD": _release_credit,
    "CORRECT_PRICE": _correct_price,
    "REBOOK_CARRIER": _rebook,
    "EXPEDITE_FREIGHT": _expedite_freight,
    "EXPEDITE_PO": _expedite_po,
    "FIX_MASTER_DATA": _fix_master_data,
    "COMPLIANCE_REVIEW": _compliance_review,
    "REASSIGN_ALLOCATION": _reassign,
}


def check(session: Session, action: str, params: dict[str, Any], *, partial: bool = False) -> list[str]:
    """The reasons ``action`` with ``params`` cannot run on the records now (empty: it can). No writes.

    ``partial``: the values an approver supplies (FIX_MASTER_DATA's empty ship-to fields) may
    still be missing, as they are when the request is made.
    """
    if action == "ESCALATE":
        return []
    if action in outbox.MESSAGE_ACTIONS:
        return outbox.check(session, action, params)
    try:
        if action == "FIX_MASTER_DATA":
            _fix_master_data(session, params, False, partial=partial)
        else:
            WRITE_ACTIONS[action](session, params, False)
    except PreconditionFailed as exc:
        return [str(exc)]
    return []


def apply(session: Session, action: str, params: dict[str, Any]) -> Changes:
    """Check and apply one write; raises :class:`PreconditionFailed` (nothing written) when it cannot."""
    with session.begin_nested():
        changes = WRITE_ACTIONS[action](session, params, True)
        session.flush()  # the database's own checks run here, inside the savepoint
        return changes


def database_refusal(exc: DBAPIError) -> str:
    """A one-line reason for a write the database refused (the driver's message, no SQL, no values)."""
    detail = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return f"the database refused the write: {type(exc.orig or exc).__name__}: {detail[0] if detail else ''}"


def escalation_targets(
    session: Session, order_id: str | None, exception_type: str | None
) -> list[ExceptionRecord]:
    """The exceptions an ESCALATE routes: the order's open ones (of ``exception_type``, when given)."""
    if not order_id:
        return []
    query = select(ExceptionRecord).where(
        ExceptionRecord.order_id == order_id, ExceptionRecord.status == "open"
    )
    if exception_type:
        query = query.where(ExceptionRecord.type == exception_type)
    return list(session.scalars(query))


def _assign(session: Session, req: ActionRequest) -> Changes:
    """ESCALATE: route the order's open exceptions (of the request's type, when it names one)."""
    rows = escalation_targets(session, req.order_id, req.exception_type)
    for row in rows:
        # it arrives in the new role's queue unclaimed and unescalated, as a reassignment does
        row.assigned_role = req.params["role"]
        row.claimed_by = row.claimed_at = row.escalated_to = row.escalated_at = None
    return {"assigned_role": req.params["role"], "exceptions": sorted(r.id for r in rows)}


def execute_request(
    session: Session, request_id: int, *, approval_id: int | None, veto: str | None = None
) -> tuple[Execution, bool]:
    """Run an approved request once, inside the caller's transaction: ``(execution, ran_now)``.

    Refuses (:class:`Forbidden`) without an approval of exactly the request's parameters; returns
    the existing execution (``ran_now`` False) when the request already ran. A precondition that no
    longer holds records a ``failed`` execution with the reason and writes nothing else; so does a
    ``veto`` (a reason the caller found, e.g. the risk changed since the approval). The caller
    must hold the write lock (SQLite ``BEGIN IMMEDIATE``) or lock the request row (PostgreSQL); a
    concurrent duplicate that slips past raises IntegrityError on the unique key at flush.
    """
    req = session.get(ActionRequest, request_id, with_for_update=True, populate_existing=True)
    if req is None:
        raise NotFound("action request", str(request_id))
    done = session.scalar(select(Execution).where(Execution.request_id == request_id))
    if done is not None:
        return done, False
    phash = params_hash(req.params)
    if req.params_hash != phash:
        raise Forbidden(f"request {request_id}: its parameters do not match their recorded hash")
    if req.action == "ESCALATE":
        approval = None
    else:
        approval = session.get(Approval, approval_id) if approval_id is not None else None
        if approval is None or approval.request_id != req.id or approval.decision not in ("approve", "edit"):
            raise Forbidden(f"request {request_id} has no approval: nothing runs without one")
        if not (approval.params_hash == phash == params_hash(approval.params)):
            raise Forbidden(f"request {request_id}: the approval {approval.id} is for other parameters")
        if req.status != "approved":
            raise Conflict(f"request {request_id} is {req.status}, not approved")
    key = idempotency_key(req.id, approval.id if approval else None, phash)
    execution = Execution(
        request_id=req.id,
        approval_id=approval.id if approval else None,
        idempotency_key=key,
        status="executed",
        result=None,
        executed_at=dt.datetime.now(dt.UTC),
    )
    session.add(execution)
    session.flush()
    before = notices.snapshot(session, req.action, dict(req.params))
    try:
        if veto:
            raise PreconditionFailed(veto)
        outside = scope_problems(session, req.order_id, req.action, req.params)
        if outside:  # checked again where the write happens: a record may have changed hands
            raise PreconditionFailed("; ".join(outside))
        if req.action == "ESCALATE":
            with session.begin_nested():
                changes = _assign(session, req)
        elif req.action in outbox.MESSAGE_ACTIONS:
            with session.begin_nested():
                changes = outbox.enqueue(session, req)  # the outbox, not an ERP record
        else:
            changes = apply(session, req.action, dict(req.params))
        execution.result = {"changes": changes}
    except PreconditionFailed as exc:
        execution.status, execution.result = "failed", {"reason": str(exc)}
    except DBAPIError as exc:  # the savepoint is rolled back: nothing of the write remains
        execution.status, execution.result = "failed", {"reason": database_refusal(exc)}
    if execution.status == "executed":
        notices.record_due(session, req, before)  # the customer notice or supplier request it makes due
    req.status = execution.status
    req.error = execution.result.get("reason")
    req.updated_at = execution.executed_at
    session.flush()
    return execution, True
