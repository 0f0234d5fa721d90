"""The check every message draft passes before a person sees it, and again after they edit it.

A message to a customer or a supplier says only what its facts say (``agent.comms.due``): every
date, record id (order, SKU, purchase order, shipment) and number in the subject and body must be
in the facts, and nothing internal may appear — cost, margin, credit or balance figures and
words, SOP references, customer tiers, "guaranteed" (SOP-CS-001 §3.5), or the name of any other
customer or supplier. Numbers are compared by value (``1,200`` = ``1200``); the day, month and
year of a date in the facts count as numbers too, so a date written out ("4 December 2026") passes
when the date is a fact.

What it says of them must hold too (``agent.claims``: the new date is not called the old one,
the eta is the eta), as for explanations and chat answers.

It must also state what changed (the new date, the substitute, the quantity shipping now, the new
eta, the purchase order): a text that is grounded but leaves that out says nothing.

The same rules as the explanations' grounding check (``agent.copilot.explain``), applied to a
flat fact record instead of a triage result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.claims import claim_errors
from tools.models import Customer, Order, PurchaseOrder, Supplier

__all__ = ["INTERNAL_WORDS", "draft_errors", "message_errors", "other_parties"]

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_ID = re.compile(r"(?<![\w-])(?:[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+|[A-Z]+\d+[A-Z0-9]*)(?![\w-])")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
# Words that only internal information uses (English, Spanish, French: the customers' languages).
INTERNAL_WORDS = (
    "cost",
    "costs",
    "margin",
    "margins",
    "profit",
    "credit",
    "balance",
    "overdue",
    "sop",
    "tier",
    "platinum",
    "guaranteed",
    "guarantee",
    "costo",
    "coste",
    "margen",
    "crédito",
    "saldo",
    "garantizado",
    "coût",
    "marge",
    "crédit",
    "solde",
    "garanti",
    "garantie",
)
_INTERNAL = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, INTERNAL_WORDS)) + r")(?!\w)", re.I)


def _number(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _numbers(text: str) -> set[Decimal]:
    scrubbed = _ID.sub(" ", _DATE.sub(" ", text))
    return {n for n in (_number(t) for t in _NUMBER.findall(scrubbed)) if n is not None}


# What a message must state, by the change that made it due: the new date, the substitute, the
# quantity shipping now, the new eta, the purchase order, the order.
_MUST_STATE = {
    "new_promised_date": ("new_promised_date",),
    "partial_shipment": ("ships_now_qty",),
    "substitution": ("substitute_sku",),
    "backordered": ("backordered_qty",),
    "new_carrier": ("eta",),
    "expedited": ("eta",),
    "expedite_requested": ("po_id",),
    "order_status": ("order_id",),
}


def _missing(text: str, facts: dict[str, Any]) -> list[str]:
    out = []
    for key in _MUST_STATE.get(str(facts.get("change") or ""), ()):
        value = facts.get(key)
        if value is None:
            continue
        if not re.search(r"(?<![\w.-])" + re.escape(str(value)) + r"(?![\w-])", text):
            out.append(f"the message must state the {key.replace('_', ' ')} {value}")
    return out


def draft_errors(
    subject: str, body: str, facts: dict[str, Any], *, other_names: Iterable[str] = ()
) -> list[str]:
    """What in the message the facts do not support, or what leaks; empty when it may be sent."""
    errors: list[str] = []
    if not (subject or "").strip():
        errors.append("the subject is empty")
    if not (body or "").strip():
        errors.append("the body is empty")
    if len(subject) > 200:
        errors.append("the subject is longer than 200 characters")
    if len(body) > 4000:
        errors.append("the body is longer than 4000 characters")
    if errors:
        return errors
    text = f"{subject}\n{body}"
    errors.extend(_missing(text, facts))
    known = json.dumps(facts, ensure_ascii=False, default=str)
    dates = set(_DATE.findall(known))
    for date in sorted(set(_DATE.findall(text)) - dates):
        errors.append(f"date {date} is not in the facts")
    known_ids = set(_ID.findall(_DATE.sub(" ", known)))
    for ident in sorted(set(_ID.findall(_DATE.sub(" ", text))) - known_ids):
        errors.append(f"{ident} is not in the facts")
    allowed = _numbers(known) | {Decimal(int(p)).normalize() for d in dates for p in d.split("-")}
    for number in sorted(_numbers(text) - allowed):
        errors.append(f"the number {number:f} is not in the facts")
    errors.extend(claim_errors(text, facts))  # what it says of them: the new date is the new date
    for word in sorted({m.group(1).lower() for m in _INTERNAL.finditer(text)}):
        errors.append(f"'{word}' is internal information and may not be written to a customer or supplier")
    lowered, in_facts = text.lower(), known.lower()
    for name in sorted({n.strip() for n in other_names if n and len(n.strip()) >= 3}):
        word = re.compile(r"(?<!\w)" + re.escape(name.lower()) + r"(?!\w)")
        if word.search(lowered) and not word.search(in_facts):  # "Bolt" the customer, not "Anchor bolt"
            errors.append(f"{name} is another party: their name may not appear in this message")
    return errors


def other_parties(session: Session, facts: dict[str, Any]) -> list[str]:
    """The names of every customer and supplier the message is not addressed to."""
    own_customer = own_supplier = None
    if facts.get("kind") == "customer" and facts.get("order_id"):
        order = session.get(Order, facts["order_id"])
        own_customer = order.customer_id if order else None
    if facts.get("kind") == "supplier" and facts.get("po_id"):
        po = session.get(PurchaseOrder, facts["po_id"])
        own_supplier = po.supplier_id if po else None
    names = [
        *session.execute(select(Customer.name).where(Customer.customer_id != own_customer)).scalars(),
        *session.execute(select(Supplier.name).where(Supplier.supplier_id != own_supplier)).scalars(),
    ]
    own = {facts.get("customer_name"), facts.get("supplier_name")}
    return [n for n in names if n and n not in own]


def message_errors(session: Session, action: str, params: dict[str, Any], evidence: Any) -> list[str]:
    """Why a NOTIFY_CUSTOMER / REQUEST_SUPPLIER request may not go to approval as it stands: its
    evidence must be the facts it was drafted from (a list of that one record), it must address the
    record those facts are about, and its subject and body must pass :func:`draft_errors`."""
    facts = evidence[0] if isinstance(evidence, list) and len(evidence) == 1 else None
    if not isinstance(facts, dict) or facts.get("kind") not in ("customer", "supplier"):
        return [f"{action} is drafted from the facts of a notice: use `copilot messages draft ORDER`"]
    target = "order_id" if action == "NOTIFY_CUSTOMER" else "po_id"
    if (facts["kind"] == "customer") != (action == "NOTIFY_CUSTOMER"):
        return [f"{action} does not fit a {facts['kind']} notice"]
    if params.get(target) != facts.get(target):
        return [f"{target} {params.get(target)!r} is not the {target} of the notice ({facts.get(target)!r})"]
    return draft_errors(
        str(params.get("subject") or ""),
        str(params.get("body") or ""),
        facts,
        other_names=other_parties(session, facts),
    )
