"""Which open orders a changed record can affect: the orders an event makes triage again.

Triage of an order reads its own records, the customer, the items of its lines (and their
substitutes), stock and purchase orders of those SKUs, the warehouses its lines ship from, price
contracts and its shipments' carriers. So a change reaches:

- ``orders`` / ``order_lines`` / ``shipments``: that order (whatever its status: a shipped or
  cancelled order has its exceptions resolved); a line also reaches the open lines of its SKU,
  whose allocation it may now give or take; an order whose rank moved (new, or its promised or
  order date, status, customer or warehouse changed) and the orders of a customer whose tier
  changed also reach the open orders with a line on one of their (sku, warehouse) pairs, whose
  order priority against them may have changed (domain.md §6: ``ALLOCATION_CONFLICT``) — a change
  of balance or credit hold reaches the customer's own open orders only;
- ``customers``: the customer's open orders; ``price_contracts``: those of its orders with a line
  of the SKU;
- ``items`` / ``inventory`` / ``substitutes``: the open lines of the SKU (at any warehouse: stock
  elsewhere decides whether a line can move there) and the lines the SKU substitutes for;
- ``purchase_orders``: the open lines of its SKU at its warehouse;
- ``warehouses``: the open lines that ship from it; ``carriers``: the orders of its shipments not
  yet delivered, and the orders with an open carrier disruption (the best carrier to rebook may
  change);
- ``suppliers``: nothing triage reads.

Every lookup is an index range (lines by SKU and status, orders by customer, shipments by carrier),
so the cost grows with the orders a change touches, not with the book. Both the old and the new
values of a record count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from tools.events.apply import Change
from tools.models import ExceptionRecord, Order, OrderLine, Shipment, Substitute
from tools.rules import CLOSED_STATUSES as CLOSED
from tools.rules import OPEN_ORDER_STATUSES, in_chunks

__all__ = ["affected_by_event", "affected_orders"]

_O, _L, _S = Order.__table__, OrderLine.__table__, Shipment.__table__


class _Keys:
    def __init__(self) -> None:
        self.orders: set[str] = set()  # directly, any status
        self.ranked: set[str] = set()  # orders whose priority may have changed (domain.md §6)
        self.customers: set[str] = set()
        self.tiers: set[str] = set()  # customers whose tier (part of their orders' rank) changed
        self.skus: set[str] = set()
        self.sku_wh: set[tuple[str, str]] = set()
        self.warehouses: set[str] = set()
        self.carriers: set[str] = set()
        self.contracts: set[tuple[str, str]] = set()


# What an order's rank among the orders sharing its stock reads (tools.rules.order_priority_key: the
# customer's tier, promised date, order date; status and warehouse decide whether and where it competes).
_RANK = {
    "orders": ("promised_date", "order_date", "status", "customer_id", "warehouse_id"),
    "customers": ("tier",),
}


def _rank_moved(change: Change) -> bool:
    fields = _RANK.get(change.table, ())
    return bool(fields) and (
        change.before is None or any(change.before[f] != change.after[f] for f in fields)
    )


def _collect(keys: _Keys, table: str, r: dict[str, Any], *, ranks: bool = True) -> None:
    if table in ("orders", "shipments") and r.get("order_id"):
        keys.orders.add(r["order_id"])
        if table == "orders" and ranks:  # its rank among the orders sharing its stock moved
            keys.ranked.add(r["order_id"])
    elif table == "order_lines":
        keys.orders.add(r["order_id"])
        keys.skus.update(s for s in (r.get("sku"), r.get("original_sku")) if s)
    elif table == "customers":
        keys.customers.add(r["customer_id"])
        if ranks:
            keys.tiers.add(r["customer_id"])
    elif table in ("items", "inventory", "substitutes"):
        keys.skus.add(r["sku"])
    elif table == "purchase_orders" and r.get("sku") and r.get("warehouse_id"):
        keys.sku_wh.add((r["sku"], r["warehouse_id"]))
    elif table == "warehouses":
        keys.warehouses.add(r["warehouse_id"])
    elif table == "carriers":
        keys.carriers.add(r["carrier_id"])
    elif table == "price_contracts":
        keys.contracts.add((r["customer_id"], r["sku"]))


def affected_orders(session: Session, changes: list[Change]) -> set[str]:
    """The ids of the orders to triage again after ``changes`` (flushed, in the same session)."""
    return affected_by_event(session, [changes])[0]


def _add(index: dict[Any, set[str]], key: Any, order_id: str | None) -> None:
    if order_id:
        index.setdefault(key, set()).add(order_id)


def _ships_from(session: Session, lines, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
    """Open orders with an active line of each (sku, warehouse) pair (the line's warehouse, else its order's)."""
    out: dict[tuple[str, str], set[str]] = {}
    for sku, wh in sorted(pairs):
        ships_from = or_(_L.c.warehouse_id == wh, and_(_L.c.warehouse_id.is_(None), _O.c.warehouse_id == wh))
        out[(sku, wh)] = set(session.scalars(lines.where(_L.c.sku == sku, ships_from).distinct()))
    return out


def affected_by_event(session: Session, changes: list[list[Change]]) -> list[set[str]]:
    """:func:`affected_orders` of each event's changes (a worker's batch, applied in turn): the same
    sets, with each lookup made once for the batch — keyed lookups whose rows are then handed to
    the events that named each key."""
    keys = [_Keys() for _ in changes]
    for k, event_changes in zip(keys, changes, strict=True):
        for change in event_changes:
            moved = _rank_moved(change)
            for image in (change.before, change.after):
                if image is not None:
                    _collect(k, change.table, image, ranks=moved)
    out = [set(k.orders) for k in keys]
    open_order = _O.c.status.in_(OPEN_ORDER_STATUSES)
    active = _L.c.status.not_in(CLOSED)
    lines = select(_L.c.order_id).join(_O, _O.c.order_id == _L.c.order_id).where(open_order, active)
    skus = {s for k in keys for s in k.skus}
    if skus:  # the SKUs these substitute for too: their lines may now take the substitute
        subs: dict[str, set[str]] = {}
        for part in in_chunks(skus):
            q1 = select(Substitute.substitute_sku, Substitute.sku).where(Substitute.substitute_sku.in_(part))
            for sub, sku in session.execute(q1):
                subs.setdefault(sub, set()).add(sku)
        wanted = skus | {s for group in subs.values() for s in group}
        by_sku: dict[str, set[str]] = {}
        both = select(_L.c.sku, _L.c.original_sku, _L.c.order_id).join(_O, _O.c.order_id == _L.c.order_id)
        for part in in_chunks(wanted):
            for column in (_L.c.sku, _L.c.original_sku):
                q2 = both.where(open_order, active, column.in_(part))
                for sku, original, oid in session.execute(q2):
                    for s in (sku, original):
                        if s in part:
                            _add(by_sku, s, oid)
        for k, found in zip(keys, out, strict=True):
            for sku in k.skus | {s for x in k.skus for s in subs.get(x, ())}:
                found |= by_sku.get(sku, set())
    by_pair = _ships_from(session, lines, {p for k in keys for p in k.sku_wh})
    for k, found in zip(keys, out, strict=True):
        for pair in k.sku_wh:
            found |= by_pair[pair]
    customers: dict[str, set[str]] = {}
    for part in in_chunks({c for k in keys for c in k.customers}):
        q3 = select(_O.c.customer_id, _O.c.order_id).where(_O.c.customer_id.in_(part), open_order)
        for customer, oid in session.execute(q3):
            _add(customers, customer, oid)
    for k, found in zip(keys, out, strict=True):
        for customer in k.customers:
            mine = customers.get(customer, set())
            found |= mine
            if customer in k.tiers:
                k.ranked |= mine  # a tier changes the rank of every order of the customer
    # Order priority (domain.md §6): the orders whose rank changed compete for stock with the open
    # orders that have a line on one of their (sku, warehouse) pairs: ALLOCATION_CONFLICT may change.
    pairs_of: dict[str, set[tuple[str, str]]] = {}
    for part in in_chunks({o for k in keys for o in k.ranked}):
        rows = session.execute(
            select(_L.c.order_id, _L.c.sku, _L.c.warehouse_id, _O.c.warehouse_id)
            .join(_O, _O.c.order_id == _L.c.order_id)
            .where(_L.c.order_id.in_(part), active)
        )
        for oid, sku, own, home in rows:
            if sku and (own or home):
                pairs_of.setdefault(oid, set()).add((sku, own or home))
    ranked_pairs = [{p for o in k.ranked for p in pairs_of.get(o, ())} - k.sku_wh for k in keys]
    by_pair = _ships_from(session, lines, set().union(*ranked_pairs) - by_pair.keys()) | by_pair
    for pairs, found in zip(ranked_pairs, out, strict=True):
        for pair in pairs:
            found |= by_pair[pair]
    by_contract: dict[tuple[str, str], set[str]] = {}
    for customer, sku in sorted({c for k in keys for c in k.contracts}):
        by_contract[(customer, sku)] = set(
            session.scalars(
                lines.where(_O.c.customer_id == customer, or_(_L.c.sku == sku, _L.c.original_sku == sku))
            )
        )
    for k, found in zip(keys, out, strict=True):
        for contract in k.contracts:
            found |= by_contract[contract]
    by_wh: dict[str, set[str]] = {}
    for part in in_chunks({w for k in keys for w in k.warehouses}):
        ships_from = or_(
            _L.c.warehouse_id.in_(part), and_(_L.c.warehouse_id.is_(None), _O.c.warehouse_id.in_(part))
        )
        q4 = (
            select(_L.c.warehouse_id, _O.c.warehouse_id, _L.c.order_id)
            .join(_O, _O.c.order_id == _L.c.order_id)
            .where(open_order, active, ships_from)
        )
        for own, home, oid in session.execute(q4):
            _add(by_wh, own if own is not None else home, oid)
    for k, found in zip(keys, out, strict=True):
        for wh in k.warehouses:
            found |= by_wh.get(wh, set())
    carriers = {c for k in keys for c in k.carriers}
    if carriers:
        by_carrier: dict[str, set[str]] = {}
        for part in in_chunks(carriers):
            q5 = select(_S.c.carrier_id, _S.c.order_id).where(
                _S.c.carrier_id.in_(part), _S.c.status != "delivered"
            )
            for carrier, oid in session.execute(q5):
                _add(by_carrier, carrier, oid)
        disrupted = set(
            session.scalars(
                select(ExceptionRecord.order_id).where(
                    ExceptionRecord.type == "CARRIER_DISRUPTION", ExceptionRecord.status == "open"
                )
            )
        )
        for k, found in zip(keys, out, strict=True):
            if k.carriers:
                found |= disrupted
                for carrier in k.carriers:
                    found |= by_carrier.get(carrier, set())
    return out
