"""The outbox: where an approved customer notice or supplier request waits for delivery.

Executing ``NOTIFY_CUSTOMER`` or ``REQUEST_SUPPLIER`` (domain.md §7) does not send anything: it
puts one message in the ``outbox`` table (status ``queued``) inside the execution's transaction,
so the message exists exactly when the execution does. A message whose facts changed since it was
drafted (``tools.notices.stale_facts``: a second new date, the rest of the split line allocated) is
not queued: its execution fails with what changed. The recipient is read from the records at
that moment — the customer's or the supplier's e-mail — never from the request: nothing a draft,
a customer note or an approver's edit says can redirect a message. The delivery worker
(``agent.comms.delivery``) sends it later, once.

The Message-ID is derived from the request (its id and parameter hash), so a message sent again
after a crash carries the same Message-ID and is recognisable downstream.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tools.errors import PreconditionFailed
from tools.models import ActionRequest, Customer, Notice, Order, OutboxMessage, PurchaseOrder, Supplier
from tools.notices import stale_facts

__all__ = [
    "COPILOT_REQUESTER",
    "MESSAGE_ACTIONS",
    "MESSAGE_ID_DOMAIN",
    "check",
    "enqueue",
    "message_id_for",
    "recipient",
]

MESSAGE_ACTIONS = ("NOTIFY_CUSTOMER", "REQUEST_SUPPLIER")
COPILOT_REQUESTER = "copilot"  # requested_by of a notice the copilot drafted and filed itself
MESSAGE_ID_DOMAIN = "fulfillment-copilot"
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def message_id_for(request_id: int, params_hash: str) -> str:
    """The Message-ID of the request's message: the same request, the same Message-ID."""
    return f"<request-{request_id}.{params_hash[:16]}@{MESSAGE_ID_DOMAIN}>"


def _address(value: str | None, whose: str) -> str:
    email = (value or "").strip()
    if not email:
        raise PreconditionFailed(f"{whose} has no e-mail address on record")
    if not _EMAIL.match(email):
        raise PreconditionFailed(f"{whose}'s e-mail address {email!r} is not a valid address")
    return email


def recipient(session: Session, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Who the message goes to, from the records now: ``{kind, recipient, order_id, po_id, name}``.

    Raises :class:`PreconditionFailed` when the record or its e-mail address is missing."""
    if action == "NOTIFY_CUSTOMER":
        order = session.get(Order, params.get("order_id"))
        if order is None:
            raise PreconditionFailed(f"order {params.get('order_id')} not found")
        customer = session.get(Customer, order.customer_id) if order.customer_id else None
        if customer is None:
            raise PreconditionFailed(f"order {order.order_id} has no customer record")
        return {
            "kind": "customer",
            "recipient": _address(customer.email, f"customer {customer.customer_id}"),
            "order_id": order.order_id,
            "po_id": None,
            "name": customer.name,
        }
    if action == "REQUEST_SUPPLIER":
        po = session.get(PurchaseOrder, params.get("po_id"))
        if po is None:
            raise PreconditionFailed(f"purchase order {params.get('po_id')} not found")
        supplier = session.get(Supplier, po.supplier_id) if po.supplier_id else None
        if supplier is None:
            raise PreconditionFailed(f"purchase order {po.po_id} has no supplier record")
        return {
            "kind": "supplier",
            "recipient": _address(supplier.email, f"supplier {supplier.supplier_id}"),
            "order_id": None,
            "po_id": po.po_id,
            "name": supplier.name,
        }
    raise PreconditionFailed(f"{action} is not a message action")


def check(session: Session, action: str, params: dict[str, Any]) -> list[str]:
    """The reasons the message cannot be queued now (empty: it can). No writes."""
    try:
        recipient(session, action, params)
    except PreconditionFailed as exc:
        return [str(exc)]
    return []


def enqueue(session: Session, req: ActionRequest) -> dict[str, Any]:
    """Queue the approved request's message (inside the execution's transaction); the changes made.

    The request's order (for a supplier request, the order whose purchase order it expedites)
    is kept on the message so the order's history shows what was sent."""
    to = recipient(session, req.action, req.params)
    facts = req.evidence[0] if isinstance(req.evidence, list) and len(req.evidence) == 1 else None
    stale = stale_facts(session, facts, f"{req.params.get('subject')}\n{req.params.get('body')}")
    if stale:  # another change since the draft: this text would tell the customer (supplier) a past state
        raise PreconditionFailed(
            "the facts this message was drafted from no longer hold: "
            + "; ".join(stale)
            + " (draft a new one: copilot messages draft ORDER)"
        )
    notice_id = session.scalar(select(Notice.id).where(Notice.request_id == req.id))
    now = dt.datetime.now(dt.UTC)
    message = OutboxMessage(
        request_id=req.id,
        notice_id=notice_id,
        kind=to["kind"],
        order_id=to["order_id"] or req.order_id,
        po_id=to["po_id"],
        recipient=to["recipient"],
        subject=req.params["subject"],
        body=req.params["body"],
        message_id=message_id_for(req.id, req.params_hash),
        status="queued",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return {
        "outbox": message.id,
        "status": "queued",
        "recipient": message.recipient,
        "message_id": message.message_id,
    }
