"""Which records an action may name: those of the order its request was filed for (domain.md §3).

A request is filed for one order and carries that order's evidence to its approver; every record a
parameter names must belong to it, or one person could have another order written under an
unrelated approval (a price corrected on an order with no exception, nothing in its audit trail):

- ``order_id`` is the request's order;
- ``line_no`` is one of its lines;
- ``shipment_id`` is one of its shipments;
- ``po_id`` is an open purchase order for the sku of one of its lines (neither shipped nor
  cancelled) at that line's warehouse.

:func:`scope_problems` is the one home of this rule. The guard runs it when a request is filed or
edited, and the executor (``tools.writes.execute_request``) again inside the transaction that
writes, so a record that changed hands in between (a shipment moved to another order) fails the
execution with the reason instead of writing.

Outside the order: :data:`OUTSIDE_ORDER` names, per action, the parameters that may name another
order's records and the rule that decides them instead (domain.md §6: the donor of
``REASSIGN_ALLOCATION``, ``from_order_id``/``from_line_no``, is the only such record).

What an approver may change: :data:`TARGETS` are the parameters that say which records an action
acts on — an edit never changes them (:func:`retargeted`); the values an approver chooses
(domain.md §3: the warehouse, substitute, quantity, date, price, carrier, ship-to values) are
everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tools import rules
from tools.models import Order, OrderLine, PurchaseOrder, Shipment

__all__ = [
    "APPROVER_VALUES",
    "OUTSIDE_ORDER",
    "TARGETS",
    "donor_problems",
    "not_approver_chosen",
    "retargeted",
    "scope_problems",
]

# Parameters naming the records an action acts on; an approver's edit never changes them.
TARGETS: frozenset[str] = frozenset(
    {"order_id", "line_no", "shipment_id", "po_id", "from_order_id", "from_line_no"}
)

# The values an approver's edit may change (domain.md §3: to_warehouse_id, substitute_sku, ship_qty,
# new_promised_date, new_unit_price, carrier_id, the ship-to values of FIX_MASTER_DATA; §7: a
# message's subject and body). Every other parameter is fixed once the request is filed: the
# targets above, and the quantity REASSIGN_ALLOCATION takes from its donor (§6 computes it).
APPROVER_VALUES: frozenset[str] = frozenset(
    {
        "to_warehouse_id",
        "substitute_sku",
        "ship_qty",
        "new_promised_date",
        "new_unit_price",
        "carrier_id",
        *rules.SHIP_TO_FIELDS,
        "subject",
        "body",
    }
)

DonorRule = Callable[[Session, Order, dict[str, Any]], list[str]]


def _priority(session: Session, order: Order) -> tuple:
    customer = order.customer
    return rules.order_priority_key(
        customer.tier if customer is not None else None, order.promised_date, order.order_date, order.order_id
    )


def donor_problems(session: Session, order: Order, params: dict[str, Any]) -> list[str]:
    """domain.md §6: why ``from_order_id``/``from_line_no`` are not a donor of the request's line —
    a line (neither shipped nor cancelled) of another open, held or released order, of the same
    sku at the same warehouse, whose order ranks below the request's in order priority."""
    donor_id, donor_no = params.get("from_order_id"), params.get("from_line_no")
    if donor_id == order.order_id:
        return ["the donor must be a line of another order"]
    donor_order = session.get(Order, donor_id)
    if donor_order is None:
        return [f"donor order {donor_id} not found"]
    if donor_order.status not in rules.OPEN_ORDER_STATUSES:
        return [f"donor order {donor_id} is {donor_order.status}: nothing may change on it"]
    donor = session.get(OrderLine, (donor_id, donor_no))
    if donor is None or rules.is_closed(donor.status):
        return [f"donor order {donor_id} has no line {donor_no} open"]
    line = session.get(OrderLine, (order.order_id, params.get("line_no")))
    if line is None:
        return []  # the request's own line is checked with the request's order
    here = rules.ship_from(line.warehouse_id, order.warehouse_id)
    there = rules.ship_from(donor.warehouse_id, donor_order.warehouse_id)
    if (donor.sku, there) != (line.sku, here):
        return [
            f"donor line {donor_no} of {donor_id} holds {donor.sku} at {there}, "
            f"line {line.line_no} needs {line.sku} at {here}"
        ]
    if _priority(session, donor_order) <= _priority(session, order):
        return [
            f"{donor_id} does not rank below {order.order_id} in order priority "
            "(tier, promised date, order date, order id): its stock may not be taken"
        ]
    return []


# action -> (the parameters that may name another order's records, the rule that checks them).
OUTSIDE_ORDER: dict[str, tuple[frozenset[str], DonorRule]] = {
    "REASSIGN_ALLOCATION": (frozenset({"from_order_id", "from_line_no"}), donor_problems),
}


def _order_id(session: Session, order: Order, value: Any) -> list[str]:
    if value != order.order_id:
        return [
            f"order_id {value} is not the request's order {order.order_id}: an action acts on its request's order only"
        ]
    return []


def _line_no(session: Session, order: Order, value: Any) -> list[str]:
    if session.get(OrderLine, (order.order_id, value)) is None:
        return [f"line {value} is not a line of {order.order_id}"]
    return []


def _shipment_id(session: Session, order: Order, value: Any) -> list[str]:
    ship = session.get(Shipment, value)
    if ship is None or ship.order_id != order.order_id:
        return [f"shipment {value} is not a shipment of {order.order_id}"]
    return []


def _po_id(session: Session, order: Order, value: Any) -> list[str]:
    po = session.get(PurchaseOrder, value)
    if po is None:
        return [f"purchase order {value} not found"]
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == order.order_id)).all()
    serves = any(  # a shipped or cancelled line needs nothing more (domain.md §2 ignores it too)
        line.sku == po.sku
        and rules.ship_from(line.warehouse_id, order.warehouse_id) == po.warehouse_id
        and not rules.is_closed(line.status)
        for line in lines
    )
    if po.status != "open" or not serves:
        return [
            f"purchase order {value} ({po.status}, {po.sku} at {po.warehouse_id}) is not an open purchase "
            f"order for the sku of a line of {order.order_id} at that line's warehouse"
        ]
    return []


_CHECKS: dict[str, Callable[[Session, Order, Any], list[str]]] = {
    "order_id": _order_id,
    "line_no": _line_no,
    "shipment_id": _shipment_id,
    "po_id": _po_id,
}


def scope_problems(session: Session, order_id: str | None, action: str, params: dict[str, Any]) -> list[str]:
    """Why ``params`` name a record outside the order ``order_id`` (empty: they don't).

    A request without an order may name no record at all (only ``ESCALATE``'s role and reason).
    """
    outside, donor_rule = OUTSIDE_ORDER.get(action, (frozenset(), None))
    named = [k for k in _CHECKS if k in params and k not in outside]
    order = session.get(Order, order_id) if order_id else None
    if order is None:
        if named or outside & set(params):
            return [f"{action} names records ({', '.join(sorted(named))}) but the request has no order"]
        return []
    problems = [p for k in named for p in _CHECKS[k](session, order, params[k])]
    # default deny: a parameter that names a record, with no rule here that allows it
    problems += [
        f"{action}: {k} names a record outside {order.order_id} and no rule allows it"
        for k in sorted(TARGETS & set(params) - set(_CHECKS) - outside)
    ]
    if donor_rule is not None and outside & set(params):
        problems += donor_rule(session, order, params)
    return problems


def retargeted(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The target parameters an edit would change (domain.md §3: an edit changes values, never targets)."""
    return sorted(k for k in TARGETS if k in before.keys() | after.keys() and before.get(k) != after.get(k))


def not_approver_chosen(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The parameters an edit would change that are neither targets nor values an approver chooses
    (:data:`APPROVER_VALUES`), e.g. REASSIGN_ALLOCATION's qty."""
    return sorted(
        k
        for k in before.keys() | after.keys()
        if k not in TARGETS and k not in APPROVER_VALUES and before.get(k) != after.get(k)
    )
