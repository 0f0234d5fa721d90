"""Read tools about money: a customer's credit position and the effective price of an item.

The effective price follows domain.md §2: the contract_price of the customer's contract for the
sku valid on the date (valid_from ≤ date ≤ valid_to, an empty valid_to is open-ended; the latest
valid_from wins), else the item's list_price. For an order line the date is the order_date and
the sku is the line's original_sku when it was substituted.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tools.errors import NotFound, ToolError
from tools.models import Customer, Item, Order, OrderLine, PriceContract
from tools.read.base import Args, bounded, id_field, iso, money, reader, require
from tools.rules import (
    ACTIVE_LINE_STATUSES,
    OPEN_ORDER_STATUSES,
    contract_in_force,
    in_force,
    priced_sku,
)

__all__ = ["effective_price", "get_customer_credit", "get_effective_price", "get_line_price"]

MAX_CONTRACTS = 10
CUSTOMER_ID = "customer id such as C-1042"


def _pct(part: Decimal, whole: Decimal) -> float | None:
    if not whole:
        return None
    return float((part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


class CustomerArgs(Args):
    customer_id: str = id_field(CUSTOMER_ID, "C-1042")


@reader(CustomerArgs)
def get_customer_credit(session: Session, customer_id: str) -> dict[str, Any]:
    """Get a customer's credit position: limit, balances, hold flag and open orders.

    Use it for credit questions ("why is this order on credit hold", "how much headroom has
    Acme"). Do not use it to find a customer by name (use search_orders with customer_name).
    Argument: customer_id, a customer id such as C-1042.
    Returns credit_limit, open_balance, overdue_balance, credit_hold, available_credit
    (limit − open balance), utilisation_pct (open balance as % of limit), the open orders
    (status open, held or released: count, count per status, value of their unshipped
    lines), headroom_after_open_orders and utilisation_with_open_orders_pct.
    """
    customer = require(session, Customer, customer_id, "customer")
    by_status = dict(
        session.execute(
            select(Order.status, func.count())
            .where(Order.customer_id == customer_id, Order.status.in_(OPEN_ORDER_STATUSES))
            .group_by(Order.status)
        ).all()
    )
    raw_value = session.scalar(
        select(func.sum(OrderLine.qty * OrderLine.unit_price))
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(
            Order.customer_id == customer_id,
            Order.status.in_(OPEN_ORDER_STATUSES),
            OrderLine.status.in_(ACTIVE_LINE_STATUSES),
        )
    )
    # SQLite sums money as floats: back to cents (exact for the amounts stored).
    value = Decimal(str(raw_value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    limit, balance = customer.credit_limit, customer.open_balance
    return {
        "customer_id": customer.customer_id,
        "name": customer.name,
        "tier": customer.tier,
        "credit_limit": money(limit),
        "open_balance": money(balance),
        "overdue_balance": money(customer.overdue_balance),
        "credit_hold": customer.credit_hold,
        "available_credit": money(limit - balance),
        "utilisation_pct": _pct(balance, limit),
        "open_orders": {
            "count": sum(by_status.values()),
            "by_status": {s: by_status[s] for s in OPEN_ORDER_STATUSES if s in by_status},
            "value": money(value),
        },
        "headroom_after_open_orders": money(limit - balance - value),
        "utilisation_with_open_orders_pct": _pct(balance + value, limit),
    }


def effective_price(session: Session, customer_id: str, sku: str, on_date: dt.date) -> dict[str, Any]:
    """The effective price of ``sku`` for ``customer_id`` on ``on_date`` (domain.md §2), explained.

    Raises :class:`NotFound` for an unknown customer or sku.
    """
    require(session, Customer, customer_id, "customer")
    item = require(session, Item, sku, "sku")
    contracts = session.scalars(
        select(PriceContract)
        .where(PriceContract.customer_id == customer_id, PriceContract.sku == sku)
        .order_by(PriceContract.valid_from.desc())
    ).all()
    valid = [c for c in contracts if in_force(c, on_date)]
    applied = contract_in_force(valid, on_date)
    shown, truncated = bounded(contracts, MAX_CONTRACTS)
    return {
        "customer_id": customer_id,
        "sku": sku,
        "on_date": on_date.isoformat(),
        "effective_price": money(applied.contract_price if applied else item.list_price),
        "source": "contract" if applied else "list_price",
        "list_price": money(item.list_price),
        "contract": None
        if applied is None
        else {
            "valid_from": iso(applied.valid_from),
            "valid_to": iso(applied.valid_to),
            "contract_price": money(applied.contract_price),
        },
        "contracts_valid_on_date": len(valid),
        "contract_count": len(contracts),
        "truncated": truncated,
        "contracts": [
            {
                "valid_from": iso(c.valid_from),
                "valid_to": iso(c.valid_to),
                "contract_price": money(c.contract_price),
                "valid_on_date": c in valid,
                "applied": c is applied,
            }
            for c in shown
        ],
    }


class EffectivePriceArgs(Args):
    customer_id: str = id_field(CUSTOMER_ID, "C-1042")
    sku: str = id_field("sku (item number) such as FAS-1001", "FAS-1001")
    on_date: dt.date = Field(
        description="the pricing date as YYYY-MM-DD, for an order its order_date, such as 2026-11-25",
        examples=["2026-11-25"],
    )


@reader(EffectivePriceArgs)
def get_effective_price(session: Session, customer_id: str, sku: str, on_date: dt.date) -> dict[str, Any]:
    """Get the price a customer should pay for a sku on a date, and where it comes from.

    Use it for price questions and quotes. For the price of an existing order line use
    get_line_price instead: it picks the right customer, date and sku (a substituted line is
    priced as its original sku).
    Arguments: customer_id such as C-1042; sku such as FAS-1001; on_date as YYYY-MM-DD.
    Returns effective_price and source: "contract" (the customer's contract valid on the
    date; when several are, the one with the latest valid_from) or "list_price" (no contract
    valid on the date); the applied contract, the list_price and the customer's contracts for
    the sku (valid_from, valid_to, contract_price, valid_on_date, applied).
    """
    return effective_price(session, customer_id, sku, on_date)


class LinePriceArgs(Args):
    order_id: str = id_field("order id such as SO-100042", "SO-100042")
    line_no: int = Field(ge=1, description="the order line number, such as 1", examples=[1])


@reader(LinePriceArgs)
def get_line_price(session: Session, order_id: str, line_no: int) -> dict[str, Any]:
    """Check an order line's unit price against the effective price it should have.

    Use it for pricing discrepancies on an order. Do not use it for quotes without an order
    (use get_effective_price).
    Arguments: order_id such as SO-100042; line_no such as 1.
    Returns the line's sku, original_sku (set when substituted), priced_sku (the sku whose
    price applies: the original one when substituted), qty and unit_price; the order's
    customer_id and order_date; effective_price with its source ("contract" or "list_price")
    and contracts as get_effective_price does; difference (unit_price − effective_price) and
    deviation_pct (difference as % of effective_price).
    """
    order = require(session, Order, order_id, "order")
    line = session.get(OrderLine, (order_id, line_no))
    if line is None:
        raise NotFound("order line", f"{order_id}/{line_no}")
    priced = priced_sku(line.sku, line.original_sku)
    missing = [
        name
        for name, value in (
            ("customer_id", order.customer_id),
            ("order_date", order.order_date),
            ("sku", priced),
        )
        if value is None
    ]
    if missing or order.customer_id is None or order.order_date is None or priced is None:
        raise ToolError(
            f"order line {order_id}/{line_no} has no {' and no '.join(missing)}: its effective price cannot be "
            "determined"
        )
    price = effective_price(session, order.customer_id, priced, order.order_date)
    effective = Decimal(price["effective_price"])
    difference = line.unit_price - effective
    return {
        "order_id": order_id,
        "line_no": line_no,
        "sku": line.sku,
        "original_sku": line.original_sku,
        "priced_sku": priced,
        "qty": line.qty,
        "unit_price": money(line.unit_price),
        "order_date": iso(order.order_date),
        **{k: v for k, v in price.items() if k not in ("sku", "on_date")},
        "difference": money(difference),
        "deviation_pct": None
        if not effective
        else float((difference * 100 / effective).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
    }
