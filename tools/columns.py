"""What the ERP columns can hold: a parameter value that would not fit is refused before it is stored.

An approved request whose value the database refuses at execution (a price of
``9999999999999.00`` in a ``Numeric(14, 2)``, a ship-to country of three letters in a
``String(2)``) would fail only at the write; the guard refuses it when the request is filed or
edited instead, with the limit in the reason. The limits are read from the SQLAlchemy column types
of ``tools.models`` (length of a ``String``, precision and scale of a ``Numeric``, the range of an
``Integer``), so a schema change moves them too; :data:`PARAM_COLUMNS` says which column each
action parameter is written to or looked up in.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Column, Date, Integer, Numeric, SmallInteger, String

from tools.models import (
    Carrier,
    ExceptionRecord,
    Order,
    OrderLine,
    PurchaseOrder,
    Shipment,
    Warehouse,
)

__all__ = ["PARAM_COLUMNS", "column_problems", "param_problems"]

# action parameter -> the column its value is written to (or the key it is looked up by)
PARAM_COLUMNS: dict[str, Column] = {
    "order_id": Order.__table__.c.order_id,
    "line_no": OrderLine.__table__.c.line_no,
    "to_warehouse_id": Warehouse.__table__.c.warehouse_id,
    "substitute_sku": OrderLine.__table__.c.sku,
    "ship_qty": OrderLine.__table__.c.allocated_qty,
    "new_promised_date": Order.__table__.c.promised_date,
    "new_unit_price": OrderLine.__table__.c.unit_price,
    "shipment_id": Shipment.__table__.c.shipment_id,
    "carrier_id": Carrier.__table__.c.carrier_id,
    "po_id": PurchaseOrder.__table__.c.po_id,
    "ship_to_street": Order.__table__.c.ship_to_street,
    "ship_to_city": Order.__table__.c.ship_to_city,
    "ship_to_postal_code": Order.__table__.c.ship_to_postal_code,
    "ship_to_country": Order.__table__.c.ship_to_country,
    "role": ExceptionRecord.__table__.c.assigned_role,
}

_INT_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))


def column_problems(name: str, column: Column, value: Any) -> list[str]:
    """Why ``value`` cannot be stored in ``column`` (empty: it can)."""
    kind = column.type
    table = getattr(column, "table", None)
    where = f"{table.name}.{column.name}" if table is not None else column.name
    if isinstance(kind, String) and kind.length is not None:
        if len(str(value)) > kind.length:
            return [f"{name} has {len(str(value))} characters; {where} holds at most {kind.length}"]
        return []
    if isinstance(kind, Numeric) and kind.precision is not None and not isinstance(kind, Integer):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return [f"{name} is not a number: {value!r}"]
        if not amount.is_finite():
            return [f"{name} must be a finite number, got {value!r}"]
        scale = kind.scale or 0
        whole = kind.precision - scale
        exponent = amount.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > scale:
            return [f"{name} has more than {scale} decimals; {where} holds {scale}"]
        if abs(amount) >= Decimal(10) ** whole:
            return [f"{name} {amount} is too large: {where} holds at most {whole} digits before the point"]
        return []
    for cls, bits in _INT_BITS:
        if isinstance(kind, cls):
            low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
            if isinstance(value, int) and not low <= value <= high:
                return [f"{name} {value} is out of range: {where} holds {low} to {high}"]
            return []
    if isinstance(kind, Date) and isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return [f"{name} is not a date: {value!r}"]
    return []


def param_problems(params: dict[str, Any]) -> list[str]:
    """Every parameter whose value its column cannot hold (parameters of no column are not judged here)."""
    return [
        p for k, v in params.items() if k in PARAM_COLUMNS for p in column_problems(k, PARAM_COLUMNS[k], v)
    ]
