"""The read-only ERP/WMS/TMS readers the copilot and its model use, in one list.

Each reader is a plain function ``reader(session, **arguments) -> dict``: arguments validated by
a pydantic model (``schema_of(reader)``; invalid ones raise :class:`~tools.errors.ToolError`),
an unknown id raises :class:`~tools.errors.NotFound`, and the result is a compact, bounded,
JSON-serialisable dict. Its docstring is the tool description the model reads.

They only read; :mod:`tools.read.registry` wraps them as LangChain tools that run each call in a
database transaction that refuses writes. This module imports no LangChain, so the command line
can use the readers without paying for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.read.base import invalid_arguments, schema_of
from tools.read.commercial import effective_price, get_customer_credit, get_effective_price, get_line_price
from tools.read.orders import (
    EXCEPTION_TYPES,
    get_order,
    get_order_shipments,
    list_open_exceptions,
    search_orders,
)
from tools.read.stock import get_open_purchase_orders, get_orders_waiting_on_po, get_stock, get_substitutes

__all__ = [
    "EXCEPTION_TYPES",
    "READERS",
    "effective_price",
    "get_customer_credit",
    "get_effective_price",
    "get_line_price",
    "get_open_purchase_orders",
    "get_order",
    "get_order_shipments",
    "get_orders_waiting_on_po",
    "get_stock",
    "get_substitutes",
    "invalid_arguments",
    "list_open_exceptions",
    "schema_of",
    "search_orders",
]

# The readers offered to the model, in the order it sees them: the most used first.
READERS: list[Callable[..., dict[str, Any]]] = [
    get_order,
    search_orders,
    list_open_exceptions,
    get_customer_credit,
    get_stock,
    get_substitutes,
    get_open_purchase_orders,
    get_orders_waiting_on_po,
    get_order_shipments,
    get_effective_price,
    get_line_price,
]
