"""Read tools about supply: stock per warehouse, substitutes, open purchase orders.

Available = on_hand − allocated (domain.md §1); a warehouse with no inventory record holds none.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tools.models import (
    Customer,
    Inventory,
    Item,
    Order,
    OrderLine,
    PurchaseOrder,
    Substitute,
    Supplier,
    Warehouse,
)
from tools.read.base import MAX_LIST, Args, bounded, id_field, iso, money, rate, reader, require
from tools.rules import OPEN_ORDER_STATUSES
from tools.sites import order_condition, scope_of, warehouse_condition

__all__ = ["get_open_purchase_orders", "get_orders_waiting_on_po", "get_stock", "get_substitutes"]

MAX_SUBSTITUTES = 20
MAX_PURCHASE_ORDERS = 20

SKU = "sku (item number) such as FAS-1001"


def _stock_rows(session: Session, skus: list[str], warehouse_id: str | None = None) -> dict[str, list[dict]]:
    """Stock per warehouse of each sku, most available first (then warehouse_id)."""
    query = (
        select(Inventory, Warehouse)
        .join(Warehouse, Warehouse.warehouse_id == Inventory.warehouse_id)
        .where(Inventory.sku.in_(skus), warehouse_condition(session, Inventory.warehouse_id))
        .order_by(Inventory.sku, (Inventory.on_hand - Inventory.allocated).desc(), Inventory.warehouse_id)
    )
    if warehouse_id is not None:
        query = query.where(Inventory.warehouse_id == warehouse_id)
    stock: dict[str, list[dict]] = {sku: [] for sku in skus}
    for inv, wh in session.execute(query):
        stock[inv.sku].append(
            {
                "warehouse_id": inv.warehouse_id,
                "region": wh.region,
                "country": wh.country,
                "on_hand": inv.on_hand,
                "allocated": inv.allocated,
                "available": inv.on_hand - inv.allocated,
            }
        )
    return stock


def _available_total(rows: list[dict]) -> int:
    # A warehouse whose allocations exceed its stock has none to give, not less than none.
    return sum(max(r["available"], 0) for r in rows)


class StockArgs(Args):
    sku: str = id_field(SKU, "FAS-1001")


@reader(StockArgs)
def get_stock(session: Session, sku: str) -> dict[str, Any]:
    """Get the stock of one sku in every warehouse: on hand, allocated and available.

    Use it to see whether and where an item can be supplied, e.g. another warehouse for a
    short order line. Do not use it for substitutes (use get_substitutes) or for incoming
    supply (use get_open_purchase_orders).
    Argument: sku, an item number such as FAS-1001.
    Returns the item (description, status active or discontinued, export_controlled) and per
    warehouse its region, country, on_hand, allocated and available (on_hand − allocated),
    most available first, with totals. Warehouses not listed hold none of it (for a user limited
    to some sites: only those sites' warehouses are listed and counted, sites_only names them).
    """
    item = require(session, Item, sku, "sku")
    rows = _stock_rows(session, [sku])[sku]
    shown, truncated = bounded(rows, MAX_LIST)
    scope = scope_of(session)
    return {
        **({} if scope.unrestricted else {"sites_only": scope.describe()}),
        "sku": sku,
        "description": item.description,
        "status": item.status,
        "export_controlled": item.export_controlled,
        "totals": {
            "on_hand": sum(r["on_hand"] for r in rows),
            "allocated": sum(r["allocated"] for r in rows),
            "available": _available_total(rows),
        },
        "warehouse_count": len(rows),
        "truncated": truncated,
        "warehouses": shown,
    }


class SubstitutesArgs(Args):
    sku: str = id_field(f"the sku to replace: {SKU}", "FAS-1001")
    include_unapproved: bool = Field(
        False,
        description="also list substitutes that are not approved (default false: approved ones only)",
        examples=[False],
    )
    warehouse_id: str | None = id_field(
        "only show stock at this warehouse id, such as WH-EAST (default: every warehouse)",
        "WH-EAST",
        required=False,
    )


@reader(SubstitutesArgs)
def get_substitutes(
    session: Session, sku: str, include_unapproved: bool = False, warehouse_id: str | None = None
) -> dict[str, Any]:
    """Get the approved substitutes of a sku with their list price and stock per warehouse.

    Use it when an item is short or discontinued, or a customer asks for an alternative.
    Only approved substitutes may be proposed; unapproved ones are named in unapproved_skus
    and listed only when include_unapproved is true. Whether the customer accepts
    substitutions is in get_order (customer.allow_substitutions). Do not use it for the
    item's own stock (use get_stock).
    Arguments: sku such as FAS-1001; include_unapproved (true or false); warehouse_id such as
    WH-EAST to see stock at the order line's warehouse only.
    Returns the sku's own list_price and status and each substitute with approved,
    description, status, list_price, available_total and stock per warehouse (on_hand,
    allocated, available).
    """
    item = require(session, Item, sku, "sku")
    if warehouse_id is not None:
        require(session, Warehouse, warehouse_id, "warehouse")
    rows = session.execute(
        select(Substitute.approved, Item)
        .join(Item, Item.sku == Substitute.substitute_sku)
        .where(Substitute.sku == sku)
        .order_by(Substitute.approved.desc(), Item.sku)
    ).all()
    unapproved = [sub.sku for approved, sub in rows if not approved]
    listed = [(approved, sub) for approved, sub in rows if approved or include_unapproved]
    shown, truncated = bounded(listed, MAX_SUBSTITUTES)
    stock = _stock_rows(session, [sub.sku for _, sub in shown], warehouse_id)
    unapproved_shown, more_unapproved = bounded(unapproved, MAX_SUBSTITUTES)
    return {
        "sku": sku,
        "list_price": money(item.list_price),
        "status": item.status,
        "stock_at": warehouse_id or "all warehouses",
        "approved_count": len(rows) - len(unapproved),
        "unapproved_skus": unapproved_shown,
        "truncated": truncated or more_unapproved or any(len(rows) > MAX_LIST for rows in stock.values()),
        "substitutes": [
            {
                "sku": sub.sku,
                "approved": approved,
                "description": sub.description,
                "status": sub.status,
                "list_price": money(sub.list_price),
                "available_total": _available_total(stock[sub.sku]),
                "stock": stock[sub.sku][:MAX_LIST],
            }
            for approved, sub in shown
        ],
    }


class PurchaseOrdersArgs(Args):
    sku: str = id_field(SKU, "FAS-1001")
    warehouse_id: str | None = id_field(
        "only purchase orders delivering to this warehouse id, such as WH-EAST (default: all)",
        "WH-EAST",
        required=False,
    )


@reader(PurchaseOrdersArgs)
def get_open_purchase_orders(session: Session, sku: str, warehouse_id: str | None = None) -> dict[str, Any]:
    """Get the open purchase orders for a sku, earliest expected delivery first.

    Use it to say when a short or backordered item will be replenished, or which purchase
    order to expedite. Received and cancelled purchase orders are not listed. Do not use it
    for stock already in a warehouse (use get_stock).
    Arguments: sku such as FAS-1001; warehouse_id such as WH-EAST for one warehouse only.
    Returns total_open_qty and each purchase order with po_id, warehouse_id, qty,
    expected_date (null: not confirmed, listed last), expedite_requested and its supplier's
    name, on_time_rate (0 to 1) and lead_time_days.
    """
    require(session, Item, sku, "sku")
    conditions = [
        PurchaseOrder.sku == sku,
        PurchaseOrder.status == "open",
        warehouse_condition(session, PurchaseOrder.warehouse_id),
    ]
    if warehouse_id is not None:
        require(session, Warehouse, warehouse_id, "warehouse")
        conditions.append(PurchaseOrder.warehouse_id == warehouse_id)
    rows = session.execute(
        select(PurchaseOrder, Supplier)
        .outerjoin(Supplier, Supplier.supplier_id == PurchaseOrder.supplier_id)
        .where(*conditions)
        .order_by(PurchaseOrder.expected_date.is_(None), PurchaseOrder.expected_date, PurchaseOrder.po_id)
    ).all()
    shown, truncated = bounded(rows, MAX_PURCHASE_ORDERS)
    return {
        "sku": sku,
        "warehouse_id": warehouse_id,
        "total_open_qty": sum(po.qty for po, _ in rows),
        "po_count": len(rows),
        "truncated": truncated,
        "purchase_orders": [
            {
                "po_id": po.po_id,
                "warehouse_id": po.warehouse_id,
                "qty": po.qty,
                "expected_date": iso(po.expected_date),
                "expedite_requested": po.expedite_requested,
                "supplier_id": po.supplier_id,
                "supplier_name": supplier.name if supplier else None,
                "supplier_on_time_rate": rate(supplier.on_time_rate) if supplier else None,
                "supplier_lead_time_days": supplier.lead_time_days if supplier else None,
            }
            for po, supplier in shown
        ],
    }


class WaitingOnPoArgs(Args):
    po_id: str = id_field("purchase order id such as PO-1042", "PO-1042")


@reader(WaitingOnPoArgs)
def get_orders_waiting_on_po(session: Session, po_id: str) -> dict[str, Any]:
    """Get the open sales order lines waiting on one purchase order (backordered, same sku and warehouse).

    Use it for "which orders are waiting on PO-1042?" or "who is hurt if that PO slips?". Do not
    use it to find purchase orders (use get_open_purchase_orders with the sku).
    Argument: po_id, a purchase order id such as PO-1042.
    A line without a warehouse of its own ships from its order's warehouse.
    Returns the purchase order (sku, warehouse_id, qty, expected_date, status, expedite_requested,
    supplier_name) and each waiting line, earliest promised first, with order_id, line_no,
    customer_id, customer_name, order status, promised_date, backorder_qty and late (the purchase
    order is expected after the promised date, or has no date); total_backordered_qty sums them.
    """
    po = require(session, PurchaseOrder, po_id, "purchase order")
    supplier = session.get(Supplier, po.supplier_id) if po.supplier_id else None
    rows = session.execute(
        select(OrderLine, Order, Customer)
        .join(Order, Order.order_id == OrderLine.order_id)
        .outerjoin(Customer, Customer.customer_id == Order.customer_id)
        .where(
            OrderLine.sku == po.sku,
            func.coalesce(OrderLine.warehouse_id, Order.warehouse_id) == po.warehouse_id,
            OrderLine.backorder_qty > 0,
            Order.status.in_(OPEN_ORDER_STATUSES),
            order_condition(session, Order.order_id),
        )
        .order_by(Order.promised_date.is_(None), Order.promised_date, Order.order_id, OrderLine.line_no)
    ).all()
    shown, truncated = bounded(rows, MAX_LIST)
    expected = po.expected_date
    return {
        "po_id": po.po_id,
        "sku": po.sku,
        "warehouse_id": po.warehouse_id,
        "qty": po.qty,
        "expected_date": iso(expected),
        "status": po.status,
        "expedite_requested": po.expedite_requested,
        "supplier_name": supplier.name if supplier else None,
        "waiting_count": len(rows),
        "total_backordered_qty": sum(line.backorder_qty for line, _, _ in rows),
        "truncated": truncated,
        "waiting": [
            {
                "order_id": order.order_id,
                "line_no": line.line_no,
                "customer_id": order.customer_id,
                "customer_name": customer.name if customer else None,
                "status": order.status,
                "promised_date": iso(order.promised_date),
                "backorder_qty": line.backorder_qty,
                "late": expected is None
                or (order.promised_date is not None and expected > order.promised_date),
            }
            for line, order, customer in shown
        ],
    }
