"""A sales order with everything an operator looks at first: lines, customer credit, stock, shipments.

Read-only; returns plain JSON-serialisable dictionaries (dates as ISO strings, money as strings).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tools import rules
from tools.errors import OrderNotFound
from tools.models import Carrier, Customer, Inventory, Item, Order, Shipment
from tools.sites import warehouse_visible

__all__ = ["order_view"]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def order_view(session: Session, order_id: str) -> dict[str, Any]:
    order = session.get(Order, order_id)
    if order is None or not warehouse_visible(session, order.warehouse_id):  # another site's: unknown
        raise OrderNotFound(order_id)
    customer: Customer | None = order.customer
    skus = sorted({ln.sku for ln in order.lines if ln.sku})
    items = {i.sku: i for i in session.scalars(select(Item).where(Item.sku.in_(skus)))} if skus else {}
    stock: dict[tuple[str, str], int] = {}
    total: dict[str, int] = {}
    if skus:
        for inv in session.scalars(select(Inventory).where(Inventory.sku.in_(skus))):
            available = inv.on_hand - inv.allocated
            stock[(inv.sku, inv.warehouse_id)] = available
            total[inv.sku] = total.get(inv.sku, 0) + max(available, 0)
    lines = []
    for ln in order.lines:
        warehouse = rules.ship_from(ln.warehouse_id, order.warehouse_id)
        item = items.get(ln.sku) if ln.sku else None
        lines.append(
            {
                "line_no": ln.line_no,
                "sku": ln.sku,
                "description": item.description if item else None,
                "item_status": item.status if item else "missing",
                "qty": ln.qty,
                "unit_price": _money(ln.unit_price),
                "warehouse_id": warehouse,
                "allocated_qty": ln.allocated_qty,
                "backorder_qty": ln.backorder_qty,
                "open_qty": ln.qty - ln.allocated_qty,
                "status": ln.status,
                "original_sku": ln.original_sku,
                "available_here": stock.get((ln.sku, warehouse), 0) if ln.sku and warehouse else 0,
                "available_all_warehouses": total.get(ln.sku, 0) if ln.sku else 0,
            }
        )
    shipments = [
        {
            "shipment_id": sh.shipment_id,
            "carrier_id": sh.carrier_id,
            "carrier_name": carrier.name if carrier else None,
            "carrier_status": carrier.status if carrier else "missing",
            "service_level": sh.service_level,
            "status": sh.status,
            "planned_ship_date": sh.planned_ship_date and sh.planned_ship_date.isoformat(),
            "eta": sh.eta and sh.eta.isoformat(),
            "freight_cost": _money(sh.freight_cost),
        }
        for sh, carrier in session.execute(
            select(Shipment, Carrier)
            .outerjoin(Carrier, Carrier.carrier_id == Shipment.carrier_id)
            .where(Shipment.order_id == order_id)
            .order_by(Shipment.shipment_id)
        )
    ]
    value = rules.order_value(order.lines)
    credit = None
    if customer is not None:
        credit = {
            "credit_limit": _money(customer.credit_limit),
            "open_balance": _money(customer.open_balance),
            "overdue_balance": _money(customer.overdue_balance),
            "credit_hold": customer.credit_hold,
            "headroom_after_order": _money(customer.credit_limit - customer.open_balance - value),
        }
    other_open = 0
    if order.customer_id:
        other_open = (
            session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.customer_id == order.customer_id, Order.status.in_(rules.OPEN_ORDER_STATUSES))
                .where(Order.order_id != order_id)
            )
            or 0
        )
    return {
        "order_id": order.order_id,
        "status": order.status,
        "channel": order.channel,
        "currency": order.currency,
        "order_date": order.order_date and order.order_date.isoformat(),
        "requested_date": order.requested_date and order.requested_date.isoformat(),
        "promised_date": order.promised_date and order.promised_date.isoformat(),
        "credit_released": order.credit_released,
        "warehouse_id": order.warehouse_id,
        "ship_to": {
            "street": order.ship_to_street,
            "city": order.ship_to_city,
            "postal_code": order.ship_to_postal_code,
            "country": order.ship_to_country,
        },
        "customer_note": order.customer_note,
        "order_value": _money(value),
        "customer": None
        if customer is None
        else {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "tier": customer.tier,
            "country": customer.country,
            "email": customer.email,
            "allow_substitutions": customer.allow_substitutions,
            "allow_partial_shipments": customer.allow_partial_shipments,
            "export_license": customer.export_license,
            "other_open_orders": other_open,
        },
        "credit": credit,
        "lines": lines,
        "shipments": shipments,
    }
