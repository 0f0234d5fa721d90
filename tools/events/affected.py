"""Which open orders a changed record can affect: the orders an event makes triage again.

Triage of an order reads its own records, the customer, the items of its lines (and their
substitutes), stock and purchase orders of those SKUs, the warehouses its lines ship from, price
contracts and its shipments' carriers. So a change reaches:

- ``orders`` / ``order_lines`` / ``shipments``: that order (whatever its status: a shipped or
  cancelled order has its exceptions resolved); a line also reaches the open lines of its SKU,
  whose allocation it may now give or take; an order (and a customer, through its tier) also
  reaches the open orders with a line on one of its (sku, warehouse) pairs, whose order priority
  against it may have changed (domain.md §6: ``ALLOCATION_CONFLICT``);
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

__all__ = ["affected_orders"]

_O, _L, _S = Order.__table__, OrderLine.__table__, Shipment.__table__


class _Keys:
    def __init__(self) -> None:
        self.orders: set[str] = set()  # directly, any status
        self.ranked: set[str] = set()  # orders whose priority may have changed (domain.md §6)
        self.customers: set[str] = set()
        self.skus: set[str] = set()
        self.sku_wh: set[tuple[str, str]] = set()
        self.warehouses: set[str] = set()
        self.carriers: set[str] = set()
        self.contracts: set[tuple[str, str]] = set()


def _collect(keys: _Keys, table: str, r: dict[str, Any]) -> None:
    if table in ("orders", "shipments") and r.get("order_id"):
        keys.orders.add(r["order_id"])
        if table == "orders":  # promised date, dates, status: its rank among the orders sharing its stock
            keys.ranked.add(r["order_id"])
    elif table == "order_lines":
        keys.orders.add(r["order_id"])
        keys.skus.update(s for s in (r.get("sku"), r.get("original_sku")) if s)
    elif table == "customers":
        keys.customers.add(r["customer_id"])
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
    keys = _Keys()
    for change in changes:
        for image in (change.before, change.after):
            if image is not None:
                _collect(keys, change.table, image)
    out = set(keys.orders)
    open_order = _O.c.status.in_(OPEN_ORDER_STATUSES)
    active = _L.c.status.not_in(CLOSED)
    lines = select(_L.c.order_id).join(_O, _O.c.order_id == _L.c.order_id).where(open_order, active)
    if keys.skus:  # the SKUs these substitute for too: their lines may now take the substitute
        subs: set[str] = set()
        for part in in_chunks(keys.skus):
            subs.update(session.scalars(select(Substitute.sku).where(Substitute.substitute_sku.in_(part))))
        for part in in_chunks(keys.skus | subs):
            out.update(session.scalars(lines.where(_L.c.sku.in_(part)).distinct()))
            out.update(session.scalars(lines.where(_L.c.original_sku.in_(part)).distinct()))
    for sku, wh in sorted(keys.sku_wh):
        ships_from = or_(_L.c.warehouse_id == wh, and_(_L.c.warehouse_id.is_(None), _O.c.warehouse_id == wh))
        out.update(session.scalars(lines.where(_L.c.sku == sku, ships_from).distinct()))
    for part in in_chunks(keys.customers):
        mine = set(session.scalars(select(_O.c.order_id).where(_O.c.customer_id.in_(part), open_order)))
        out.update(mine)
        keys.ranked.update(mine)  # a tier changes the rank of every order of the customer
    # Order priority (domain.md §6): the orders whose rank changed compete for stock with the open
    # orders that have a line on one of their (sku, warehouse) pairs: ALLOCATION_CONFLICT may change.
    pairs: set[tuple[str, str]] = set()
    for part in in_chunks(keys.ranked):
        rows = session.execute(
            select(_L.c.sku, _L.c.warehouse_id, _O.c.warehouse_id)
            .join(_O, _O.c.order_id == _L.c.order_id)
            .where(_L.c.order_id.in_(part), active)
        )
        pairs.update((sku, own or home) for sku, own, home in rows if sku and (own or home))
    for sku, wh in sorted(pairs - keys.sku_wh):
        ships_from = or_(_L.c.warehouse_id == wh, and_(_L.c.warehouse_id.is_(None), _O.c.warehouse_id == wh))
        out.update(session.scalars(lines.where(_L.c.sku == sku, ships_from).distinct()))
    for customer, sku in sorted(keys.contracts):
        out.update(
            session.scalars(
                lines.where(_O.c.customer_id == customer, or_(_L.c.sku == sku, _L.c.original_sku == sku))
            )
        )
    for part in in_chunks(keys.warehouses):
        ships_from = or_(
            _L.c.warehouse_id.in_(part), and_(_L.c.warehouse_id.is_(None), _O.c.warehouse_id.in_(part))
        )
        out.update(session.scalars(lines.where(ships_from).distinct()))
    if keys.carriers:
        for part in in_chunks(keys.carriers):
            stmt = select(_S.c.order_id).where(_S.c.carrier_id.in_(part), _S.c.status != "delivered")
            out.update(o for o in session.scalars(stmt) if o)
        disrupted = select(ExceptionRecord.order_id).where(
            ExceptionRecord.type == "CARRIER_DISRUPTION", ExceptionRecord.status == "open"
        )
        out.update(session.scalars(disrupted))
    return out
