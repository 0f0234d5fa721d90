"""Small factories of eval-case fixtures (domain.md §5 format) for tests.

:func:`clean_fixture` is one order on which no exception holds: customer C1 (US, well within
credit), items A and B, warehouses WH1 (US) and WH2 (DE) with plenty of stock at WH1, an ``ok``
carrier. Tests change the fields their case is about with :func:`edit` and load the result with
``tools.fixtures.load_fixture``.
"""

from __future__ import annotations

import copy
from typing import Any

ORDER_DATE = "2026-11-01"
PROMISED = "2026-11-20"

_CLEAN: dict[str, list[dict[str, Any]]] = {
    "customers": [
        {
            "customer_id": "C1",
            "name": "Acme",
            "tier": "gold",
            "credit_limit": 100000,
            "open_balance": 0,
            "overdue_balance": 0,
            "credit_hold": False,
            "allow_substitutions": True,
            "allow_partial_shipments": True,
            "export_license": False,
            "country": "US",
            "email": "a@acme.test",
        },
        {"customer_id": "C2", "name": "Bolt", "tier": "standard", "credit_limit": 100000, "country": "US"},
    ],
    "items": [
        {"sku": "A", "description": "Anchor bolt", "list_price": 100, "unit_cost": 60, "status": "active"},
        {"sku": "B", "description": "Bracket", "list_price": 50, "unit_cost": 30, "status": "active"},
    ],
    "warehouses": [
        {"warehouse_id": "WH1", "name": "East", "region": "east", "country": "US"},
        {"warehouse_id": "WH2", "name": "Hamburg", "region": "eu", "country": "DE"},
    ],
    "inventory": [
        {"sku": "A", "warehouse_id": "WH1", "on_hand": 500, "allocated": 0},
        {"sku": "B", "warehouse_id": "WH1", "on_hand": 500, "allocated": 0},
    ],
    "carriers": [{"carrier_id": "CA1", "name": "Fast", "status": "ok", "on_time_rate": 0.95}],
    "suppliers": [{"supplier_id": "SUP1", "name": "Forge", "on_time_rate": 0.9, "lead_time_days": 14}],
    "orders": [],
}


def order(
    order_id: str = "SO1", *, lines: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    """An open order of C1 from WH1 with a complete US ship-to and, by default, 10 × A at 100."""
    record = {
        "order_id": order_id,
        "customer_id": "C1",
        "channel": "edi",
        "order_date": ORDER_DATE,
        "requested_date": PROMISED,
        "promised_date": PROMISED,
        "status": "open",
        "warehouse_id": "WH1",
        "ship_to_street": "1 Main St",
        "ship_to_city": "Boston",
        "ship_to_postal_code": "02101",
        "ship_to_country": "US",
        "customer_note": "",
        "lines": lines if lines is not None else [line()],
    }
    record.update(fields)
    return record


def line(
    line_no: int = 1, sku: str = "A", qty: int = 10, unit_price: float = 100, **fields: Any
) -> dict[str, Any]:
    return {"line_no": line_no, "sku": sku, "qty": qty, "unit_price": unit_price, "status": "open", **fields}


def clean_fixture(*orders: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The clean world with ``orders`` (default: one clean order SO1)."""
    fixture = copy.deepcopy(_CLEAN)
    fixture["orders"] = [copy.deepcopy(o) for o in orders] or [order()]
    return fixture


def edit(fixture: dict[str, list[dict[str, Any]]], table: str, key: str, **changes: Any) -> dict[str, Any]:
    """Update (or, when ``key`` is not there, append) the record of ``table`` whose key is ``key``.

    Keys: ``customers`` C1, ``items`` A, ``inventory`` A/WH1, ``orders`` SO1, ``lines`` SO1/1 (the
    nested order line), others by their single key field.
    """
    if table == "lines":
        order_id, line_no = key.split("/")
        target = next(o for o in fixture["orders"] if o["order_id"] == order_id)["lines"]
        match = [x for x in target if x["line_no"] == int(line_no)]
        fresh = line(int(line_no))
    else:
        target = fixture.setdefault(table, [])
        match = [r for r in target if _key(table, r) == key]
        fresh = _new(table, key)
    record = match[0] if match else fresh
    if not match:
        target.append(record)
    record.update(changes)
    return record


_KEYS = {
    "customers": ("customer_id",),
    "items": ("sku",),
    "warehouses": ("warehouse_id",),
    "inventory": ("sku", "warehouse_id"),
    "carriers": ("carrier_id",),
    "suppliers": ("supplier_id",),
    "purchase_orders": ("po_id",),
    "orders": ("order_id",),
    "shipments": ("shipment_id",),
    "price_contracts": ("customer_id", "sku", "valid_from"),
    "substitutes": ("sku", "substitute_sku"),
}


def _key(table: str, record: dict[str, Any]) -> str:
    return "/".join(str(record[k]) for k in _KEYS[table])


def _new(table: str, key: str) -> dict[str, Any]:
    return dict(zip(_KEYS[table], key.split("/"), strict=True))
