"""Read tools about orders: one order, its shipments, order search, open exceptions.

The docstrings of the readers are what the model reads as tool descriptions: written for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from tools.domain import EXCEPTION_TYPES, ExceptionType
from tools.models import Carrier, Customer, ExceptionRecord, Item, Order, OrderLine, Shipment, Warehouse
from tools.orders import order_view
from tools.read.base import (
    Args,
    bounded,
    id_field,
    iso,
    limit_field,
    money,
    offset_field,
    page,
    rate,
    reader,
    require,
)
from tools.rules import order_value
from tools.sites import order_condition, orders_where

__all__ = [
    "EXCEPTION_TYPES",
    "get_order",
    "get_order_shipments",
    "list_open_exceptions",
    "search_orders",
]

OrderStatus = Literal["open", "held", "released", "shipped", "cancelled"]

MAX_ORDER_LINES = 50
MAX_SHIPMENTS = 20
MAX_EVIDENCE = 5

ORDER_ID = "order id such as SO-100042"


class OrderArgs(Args):
    order_id: str = id_field(ORDER_ID, "SO-100042")


@reader(OrderArgs)
def get_order(session: Session, order_id: str) -> dict[str, Any]:
    """Get one sales order with its lines, customer, credit position, stock and shipments.

    Use it first whenever a question names an order, before answering anything about it.
    Do not use it to find orders (use search_orders) or for a customer's overall credit
    (use get_customer_credit).
    Argument: order_id, an order id such as SO-100042.
    Returns the order's status, dates, ship-to address, customer note and order_value; the
    customer and its credit (limit, open and overdue balance, credit_hold, headroom after this
    order); each line with sku, qty, unit_price, warehouse_id, allocated, backordered and open
    quantity, status, original_sku when substituted, and available stock at its warehouse and
    in all warehouses; its shipments. Money is a decimal string in the order's currency.
    """
    view = order_view(session, order_id)
    lines, more_lines = bounded(view["lines"], MAX_ORDER_LINES)
    shipments, more_shipments = bounded(view["shipments"], MAX_SHIPMENTS)
    view.update(
        line_count=len(view["lines"]),
        shipment_count=len(view["shipments"]),
        lines=lines,
        shipments=shipments,
        truncated=more_lines or more_shipments,
    )
    return view


@reader(OrderArgs)
def get_order_shipments(session: Session, order_id: str) -> dict[str, Any]:
    """Get the shipments of an order with their carrier's status and on-time rate.

    Use it for delivery questions: is it late, which carrier, is the carrier disrupted, when
    will it arrive. Do not use it to choose another carrier; the copilot proposes rebookings.
    Argument: order_id, an order id such as SO-100042.
    Returns the order's promised_date and each shipment with carrier_id, carrier name,
    carrier_status (ok, constrained or disrupted), carrier_on_time_rate (0 to 1),
    service_level, status (planned, booked, in_transit, delayed or delivered),
    planned_ship_date, eta, eta_after_promised, delivered_date and freight_cost.
    """
    order = require(session, Order, order_id, "order")
    rows = session.execute(
        select(Shipment, Carrier)
        .outerjoin(Carrier, Carrier.carrier_id == Shipment.carrier_id)
        .where(Shipment.order_id == order_id)
        .order_by(Shipment.shipment_id)
    ).all()
    shown, truncated = bounded(rows, MAX_SHIPMENTS)
    promised = order.promised_date
    return {
        "order_id": order_id,
        "promised_date": iso(promised),
        "shipment_count": len(rows),
        "truncated": truncated,
        "shipments": [
            {
                "shipment_id": sh.shipment_id,
                "carrier_id": sh.carrier_id,
                "carrier_name": carrier.name if carrier else None,
                "carrier_status": carrier.status if carrier else None,
                "carrier_on_time_rate": rate(carrier.on_time_rate) if carrier else None,
                "service_level": sh.service_level,
                "status": sh.status,
                "planned_ship_date": iso(sh.planned_ship_date),
                "eta": iso(sh.eta),
                "eta_after_promised": None if not (sh.eta and promised) else sh.eta > promised,
                "delivered_date": iso(sh.delivered_date),
                "freight_cost": money(sh.freight_cost),
            }
            for sh, carrier in shown
        ],
    }


class SearchOrdersArgs(Args):
    customer_id: str | None = id_field(
        "only orders of this customer id, such as C-1042", "C-1042", required=False
    )
    customer_name: str | None = Field(
        None,
        min_length=2,
        max_length=100,
        description="only orders of customers whose name contains this text (any case), such as acme",
        examples=["acme"],
    )
    status: OrderStatus | None = Field(None, description="only orders in this status", examples=["held"])
    date_from: dt.date | None = Field(
        None,
        description="only orders with order_date on or after this date, YYYY-MM-DD",
        examples=["2026-11-01"],
    )
    date_to: dt.date | None = Field(
        None,
        description="only orders with order_date on or before this date, YYYY-MM-DD",
        examples=["2026-11-30"],
    )
    sku: str | None = id_field(
        "only orders with a line for this sku (or substituted from it), such as FAS-1001",
        "FAS-1001",
        required=False,
    )
    exception_type: ExceptionType | None = Field(
        None, description="only orders with an open exception of this type", examples=["INVENTORY_SHORTFALL"]
    )
    limit: int = limit_field()
    offset: int = offset_field()

    @model_validator(mode="after")
    def _dates_in_order(self) -> SearchOrdersArgs:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self


@reader(SearchOrdersArgs)
def search_orders(
    session: Session,
    customer_id: str | None = None,
    customer_name: str | None = None,
    status: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    sku: str | None = None,
    exception_type: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """Search orders by customer, status, order date, sku or open exception type.

    Use it to find orders ("held orders of Acme this month", "orders with SKU FAS-1001 short
    of stock") or a customer's id from part of its name. Do not use it for one order whose id
    you know (use get_order). All filters are optional and combine with AND.
    Arguments: customer_id such as C-1042 or customer_name such as acme; status (open, held,
    released, shipped, cancelled); date_from and date_to as YYYY-MM-DD; sku such as FAS-1001;
    exception_type such as INVENTORY_SHORTFALL; limit (at most 50) and offset to page.
    Returns total (all matches), count, next_offset (null on the last page) and results,
    newest order_date first: order_id, customer, status, dates, line count, order_value and
    the open exception types recorded for the order.
    """
    conditions = [orders_where(session)]
    if customer_id is not None:
        require(session, Customer, customer_id, "customer")
        conditions.append(Order.customer_id == customer_id)
    if customer_name is not None:
        names = select(Customer.customer_id).where(
            func.lower(Customer.name).contains(customer_name.lower(), autoescape=True)
        )
        conditions.append(Order.customer_id.in_(names))
    if status is not None:
        conditions.append(Order.status == status)
    if date_from is not None:
        conditions.append(Order.order_date >= date_from)
    if date_to is not None:
        conditions.append(Order.order_date <= date_to)
    if sku is not None:
        require(session, Item, sku, "sku")
        lines = select(OrderLine.order_id).where(or_(OrderLine.sku == sku, OrderLine.original_sku == sku))
        conditions.append(Order.order_id.in_(lines))
    if exception_type is not None:
        flagged = select(ExceptionRecord.order_id).where(
            ExceptionRecord.type == exception_type, ExceptionRecord.status == "open"
        )
        conditions.append(Order.order_id.in_(flagged))
    total = session.scalar(select(func.count()).select_from(Order).where(*conditions)) or 0
    orders = session.scalars(
        select(Order)
        .where(*conditions)
        .order_by(Order.order_date.is_(None), Order.order_date.desc(), Order.order_id)
        .limit(limit)
        .offset(offset)
    ).all()
    open_types: dict[str, set[str]] = {}
    if orders:
        for oid, kind in session.execute(
            select(ExceptionRecord.order_id, ExceptionRecord.type).where(
                ExceptionRecord.order_id.in_([o.order_id for o in orders]), ExceptionRecord.status == "open"
            )
        ):
            open_types.setdefault(oid, set()).add(kind)
    results = [
        {
            "order_id": o.order_id,
            "customer_id": o.customer_id,
            "customer_name": o.customer.name if o.customer else None,
            "status": o.status,
            "order_date": iso(o.order_date),
            "promised_date": iso(o.promised_date),
            "warehouse_id": o.warehouse_id,
            "lines": len(o.lines),
            "order_value": money(order_value(o.lines)),
            "currency": o.currency,
            "open_exceptions": sorted(open_types.get(o.order_id, ())),
        }
        for o in orders
    ]
    return page(results, total=total, offset=offset, key="orders")


class ExceptionsArgs(Args):
    exception_type: ExceptionType | None = Field(
        None, description="only exceptions of this type", examples=["CREDIT_HOLD"]
    )
    order_id: str | None = id_field(f"only exceptions of this order: {ORDER_ID}", "SO-100042", required=False)
    customer_id: str | None = id_field(
        "only exceptions of this customer id, such as C-1042", "C-1042", required=False
    )
    sku: str | None = id_field("only exceptions about this sku, such as FAS-1001", "FAS-1001", required=False)
    warehouse_id: str | None = id_field(
        "only exceptions at this warehouse id, such as WH-EAST", "WH-EAST", required=False
    )
    limit: int = limit_field()
    offset: int = offset_field()


@reader(ExceptionsArgs)
def list_open_exceptions(
    session: Session,
    exception_type: str | None = None,
    order_id: str | None = None,
    customer_id: str | None = None,
    sku: str | None = None,
    warehouse_id: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> dict[str, Any]:
    """List the open exceptions recorded by triage, oldest first.

    Use it for worklists and patterns ("open credit holds", "what is open at WH-EAST", "open
    exceptions of customer C-1042"). Do not use it for the live state of one order (use
    get_order): it shows what the last triage recorded. All filters are optional and combine
    with AND.
    Arguments: exception_type such as CREDIT_HOLD; order_id such as SO-100042; customer_id such as
    C-1042; sku such as FAS-1001; warehouse_id such as WH-EAST; limit (at most 50) and offset.
    Returns total, count, next_offset (null on the last page) and exceptions: exception_id,
    order_id, type, line_no or shipment_id, sku, customer_id, warehouse_id, assigned_role,
    first_seen_at, detected_at and up to 5 evidence entries (evidence_count says how many).
    """
    for value, model, kind in (
        (order_id, Order, "order"),
        (customer_id, Customer, "customer"),
        (sku, Item, "sku"),
        (warehouse_id, Warehouse, "warehouse"),
    ):
        if value is not None:
            require(session, model, value, kind)
    filters = {
        "type": exception_type,
        "order_id": order_id,
        "customer_id": customer_id,
        "sku": sku,
        "warehouse_id": warehouse_id,
    }
    condition = and_(
        ExceptionRecord.status == "open",
        order_condition(session, ExceptionRecord.order_id),
        *(getattr(ExceptionRecord, name) == value for name, value in filters.items() if value is not None),
    )
    total = session.scalar(select(func.count()).select_from(ExceptionRecord).where(condition)) or 0
    records = session.scalars(
        select(ExceptionRecord)
        .where(condition)
        .order_by(ExceptionRecord.first_seen_at, ExceptionRecord.id)
        .limit(limit)
        .offset(offset)
    ).all()
    results = []
    for ex in records:
        evidence = (
            ex.evidence if isinstance(ex.evidence, list) else [] if ex.evidence is None else [ex.evidence]
        )
        shown, _ = bounded(evidence, MAX_EVIDENCE)
        results.append(
            {
                "exception_id": ex.id,
                "order_id": ex.order_id,
                "type": ex.type,
                "line_no": ex.line_no,
                "shipment_id": ex.shipment_id,
                "sku": ex.sku,
                "customer_id": ex.customer_id,
                "warehouse_id": ex.warehouse_id,
                "assigned_role": ex.assigned_role,
                "first_seen_at": iso(ex.first_seen_at),
                "detected_at": iso(ex.detected_at),
                "evidence": shown,
                "evidence_count": len(evidence),
            }
        )
    return page(results, total=total, offset=offset, key="exceptions")
