"""What a follow-up refers to, and the READ tool that answers an unambiguous question, without a model.

The thread's focus (``CopilotState.focus``) remembers the records under discussion: the order, its
customer (id and name), the sku and warehouse of its short line, the purchase order last shown.
"this customer", "that SKU", "the other orders", "the warehouse", "that PO" resolve from it as "it"
resolves to the order. :func:`follow_up_call` reads the questions whose tool and arguments are
certain from the words and the focus (a customer's other open orders and their risk, a sku's
stock by warehouse, the orders waiting on a purchase order, ...) so that no model is needed to
choose; :func:`needs_order` tells the question about "an order" that names none and has none
under discussion, which is answered at once with a question back.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from agent.triage.order_numbers import OrderNumbers, find_order_ids
from tools.db import read_only
from tools.models import Customer, Order, OrderLine
from tools.rules import ship_from

__all__ = [
    "FOCUS_KEYS",
    "asks_lookup",
    "asks_procedure",
    "follow_up_call",
    "mentioned_ids",
    "needs_order",
    "order_entities",
    "refers_to_customer_or_sku",
    "remember_entities",
]

# The ids a follow-up may reuse without the user typing them again.
FOCUS_KEYS = ("order_id", "customer_id", "sku", "warehouse_id", "po_id")

_I = re.IGNORECASE
_CUSTOMER_REF = re.compile(
    r"\b(?:this|that|the same|the|their|its|his|her)\s+customer(?:'s)?\b|\bthey\b|\bthem\b", _I
)
_OTHER_ORDERS = re.compile(
    r"\b(?:other|their|its|remaining|customer's|this customer's|that customer's)\s+(?:open\s+)?orders?\b|"
    r"\bother ones\b|\borders? of (?:this|that|the same) customer\b",
    _I,
)
_SKU_REF = re.compile(r"\b(?:this|that|the same|the)\s+(?:sku|item|part|product|article)\b", _I)
_WAREHOUSE_REF = re.compile(r"\b(?:this|that|the same|the)\s+warehouse\b", _I)
_PO_REF = re.compile(r"\b(?:this|that|the same|the)\s+(?:po|purchase order)\b", _I)
_SKU_ID = re.compile(r"\b[A-Z]{2,5}-\d{3,6}\b")
_PO_ID = re.compile(r"\bPO-\d+\b", _I)

_STOCK = re.compile(
    r"\b(?:stock|stocks|inventory|on hand|available|availability|units)\b|\bwhere\b.*\b(?:have|has|held)\b|"
    r"\b(?:which|what)\s+(?:warehouses?|dcs?|sites?|locations?)\b.*\b(?:have|has|hold\w*|held|carr\w+)\b",
    _I,
)
_SUBSTITUTE = re.compile(
    r"\b(?:substitut\w*|alternative\w*|equivalent\w*|replacement\w*|stand-?ins?|swap\w*|interchangeable)\b",
    _I,
)
_INCOMING = re.compile(
    r"\b(?:purchase orders?|pos|incoming|replenish\w*|restock\w*|inbound|on order|from the supplier|"
    r"from (?:a|our|the) vendor)\b|\bwhen\b.*\b(?:arrive|come in|back in stock)\b",
    _I,
)
_WAITING = re.compile(r"\b(?:wait\w*|depend\w*|hurt|affected|backorder\w*|blocked by|slips?)\b", _I)
_CREDIT = re.compile(r"\b(?:credit|limit|balance|overdue|owe\w*|headroom)\b", _I)
_ORDERS_RISK = re.compile(
    r"\b(?:orders?)\b.*\b(?:risk|late|delay\w*|blocked|stuck|exceptions?|problems?|open)\b|"
    r"\b(?:risk|late|delay\w*|blocked|stuck)\b.*\borders?\b",
    _I,
)
_SHIPMENT = re.compile(r"\b(?:shipments?|carrier|tracking|eta|in transit|delivered|deliver\w*)\b", _I)
_PROCEDURE = re.compile(
    r"\b(?:sops?|procedures?|polic(?:y|ies)|guidelines?|playbook)\b|"
    r"\bwho\s+(?:may|can|must|should|is allowed to|approves?|signs? off|decides?)\b|"
    r"\b(?:are we|am i|is anyone)\s+allowed to\b|\bwhat (?:is|are) the rules?\b",
    _I,
)
# A question about one order ("why not split the shipment?", "what is blocking it?") that needs one.
_ABOUT_AN_ORDER = re.compile(
    r"\bwhy\s+(?:not|don't|can't|isn't)\b|\b(?:split|reallocate|substitute|release|expedite|rebook)\b|"
    r"\bblock\w*\b|\b(?:it|this order|that order|the order|my order)\b",
    _I,
)


def mentioned_ids(text: str, numbers: OrderNumbers | None) -> dict[str, list[str]]:
    """The skus and purchase orders a message names by id (order numbers are not skus)."""
    orders = {o.upper() for o in find_order_ids(text, numbers)}
    pos = [m.group(0).upper() for m in _PO_ID.finditer(text)]
    skus = [
        m.group(0)
        for m in _SKU_ID.finditer(text)
        if m.group(0).upper() not in orders
        and m.group(0).upper() not in pos
        and not m.group(0).upper().startswith(("SO-", "WH-", "C-"))
        and not find_order_ids(m.group(0), numbers)
    ]
    return {"sku": skus, "po_id": pos}


def asks_lookup(tool: str, question: str) -> bool:
    """Whether the question's own words ask for what ``tool`` looks up (a sku's stock, its
    substitutes or incoming POs, the orders waiting on a PO, a customer's credit, an order's
    shipments) and nothing more: then the lookup's facts are the answer. "What's the price of
    ABC-1234?" reaches ``get_stock`` by the sku alone and is not such a question."""
    words = {
        "get_stock": (_STOCK, _WAREHOUSE_REF),
        "get_substitutes": (_SUBSTITUTE,),
        "get_open_purchase_orders": (_INCOMING,),
        "get_orders_waiting_on_po": (_WAITING, _ORDERS_RISK),
        "get_customer_credit": (_CREDIT,),
        "get_order_shipments": (_SHIPMENT,),
    }.get(tool, ())
    single = question.count("?") <= 1 and not re.search(r"\?\s*(?:and|also)\b", question, _I)
    return single and any(w.search(question) for w in words)


def refers_to_customer_or_sku(question: str) -> bool:
    """ "this customer", "that part": the question is about another record under discussion than the
    order, so "this" does not make it a question about the order."""
    return bool(_CUSTOMER_REF.search(question) or _SKU_REF.search(question))


def asks_procedure(question: str) -> bool:
    """A question about a procedure, a rule or who may decide ("What does the SOP say about who may
    release a credit hold?"): the SOPs answer it, not an order."""
    return bool(_PROCEDURE.search(question))


def needs_order(question: str, focus: dict[str, Any], numbers: OrderNumbers | None) -> bool:
    """A question about an order that names none while none is under discussion: ask which."""
    if focus.get("order_id") or find_order_ids(question, numbers) or asks_procedure(question):
        return False
    ids = mentioned_ids(question, numbers)
    if ids["sku"] or ids["po_id"] or _CUSTOMER_REF.search(question) or _OTHER_ORDERS.search(question):
        return False
    return bool(_ABOUT_AN_ORDER.search(question)) and len(question) <= 160


def follow_up_call(
    question: str, focus: dict[str, Any], numbers: OrderNumbers | None
) -> tuple[str, dict[str, Any]] | None:
    """The READ call an unambiguous question about a purchase order, a sku, a customer or an order's
    shipments asks for, its ids from the words or the focus; None when the words leave it open."""
    if len(question) > 200:
        return None
    ids = mentioned_ids(question, numbers)
    named_orders = find_order_ids(question, numbers)
    po = ids["po_id"][0] if ids["po_id"] else (focus.get("po_id") if _PO_REF.search(question) else None)
    if po and (_WAITING.search(question) or _ORDERS_RISK.search(question)):
        return "get_orders_waiting_on_po", {"po_id": po}
    sku = ids["sku"][0] if ids["sku"] else None
    if sku is None and (
        _SKU_REF.search(question) or (_WAREHOUSE_REF.search(question) and _STOCK.search(question))
    ):
        sku = focus.get("sku")
    if sku and not named_orders:
        if _SUBSTITUTE.search(question):
            return "get_substitutes", {"sku": sku}
        if _INCOMING.search(question):
            return "get_open_purchase_orders", {"sku": sku}
        if _STOCK.search(question) or _WAREHOUSE_REF.search(question) or ids["sku"]:
            return "get_stock", {"sku": sku}
    customer = focus.get("customer_id")
    refers_customer = bool(_CUSTOMER_REF.search(question) or _OTHER_ORDERS.search(question))
    if customer and refers_customer and not named_orders:
        if _OTHER_ORDERS.search(question) or _ORDERS_RISK.search(question):
            args: dict[str, Any] = {"customer_id": customer}
            if focus.get("order_id") and re.search(r"\bother\b", question, _I):
                args["exclude_order_id"] = focus["order_id"]
            return "find_customer_orders", args
        if _CREDIT.search(question):
            return "get_customer_credit", {"customer_id": customer}
    order = named_orders[0] if len(named_orders) == 1 else None
    if order is None and re.search(r"\b(?:it|its|this order|that order|the order)\b", question, _I):
        order = focus.get("order_id")
    if order and _SHIPMENT.search(question) and not re.search(r"\bsplit\b", question, _I):
        return "get_order_shipments", {"order_id": order}
    return None


def order_entities(factory: Any, order_id: str) -> dict[str, Any]:
    """The customer of an order and the sku and warehouse of its first backordered (else first)
    line: what "this customer", "that SKU" and "the warehouse" mean after the order is discussed."""
    with read_only(factory) as session:
        row = session.execute(
            select(Order.customer_id, Order.warehouse_id, Customer.name)
            .outerjoin(Customer, Customer.customer_id == Order.customer_id)
            .where(Order.order_id == order_id)
        ).first()
        if row is None:
            return {}
        lines = session.execute(
            select(
                OrderLine.sku,
                OrderLine.warehouse_id,
                OrderLine.backorder_qty,
                OrderLine.qty,
                OrderLine.allocated_qty,
            )
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.line_no)
        ).all()
    out: dict[str, Any] = {"customer_id": row.customer_id, "customer": row.name}
    short = [ln for ln in lines if ln.backorder_qty > 0 or ln.allocated_qty < ln.qty]
    candidates = short or list(lines)
    if candidates:
        pick = candidates[0]
        out["sku"], out["warehouse_id"] = pick.sku, ship_from(pick.warehouse_id, row.warehouse_id)
    return {k: v for k, v in out.items() if v}


def remember_entities(focus: dict[str, Any], tool: str, args: dict[str, Any], result: Any) -> None:
    """After a READ call: the sku, purchase order or customer it was about is now under discussion."""
    if not isinstance(result, dict):
        return
    if tool in ("get_stock", "get_substitutes", "get_open_purchase_orders") and args.get("sku"):
        focus["sku"] = args["sku"]
        pos = result.get("purchase_orders") or []
        if tool == "get_open_purchase_orders" and pos:
            focus["po_id"] = pos[0]["po_id"]
            focus["warehouse_id"] = pos[0].get("warehouse_id") or focus.get("warehouse_id")
    elif tool == "triage_order":
        # the purchase order its answer names (the recommendation's EXPEDITE_PO, else a
        # PROCUREMENT_DELAY's earliest open one) is "that PO" next
        named = [((result.get("recommendation") or {}).get("params") or {}).get("po_id")]
        named += [(exc.get("facts") or {}).get("po_id") for exc in result.get("exceptions") or []]
        if po := next((p for p in named if p), None):
            focus["po_id"] = po
    elif tool == "get_orders_waiting_on_po":
        focus.update({k: result[k] for k in ("po_id", "sku", "warehouse_id") if result.get(k)})
    elif tool in ("get_customer_credit", "find_customer_orders", "find_late_orders"):
        if result.get("customer_id"):
            focus["customer_id"] = result["customer_id"]
        if result.get("customer") or result.get("name"):
            focus["customer"] = result.get("customer") or result.get("name")
