"""Across orders (domain.md §6): who holds the stock a short line needs, and what may be taken.

Scarce stock is arbitrated by order priority (:func:`tools.rules.order_priority_key`). A short line
whose stock cannot come from another warehouse or an approved substitute may take units that lines
of lower-priority orders hold at the same warehouse: those lines are its donors. This module holds
the pieces detection (``ALLOCATION_CONFLICT``) and planning (``REASSIGN_ALLOCATION``, and the two
feasibility tests that come before it) share, so both read one rule:

- :func:`load_donors`: the lines holding allocation of a (sku, warehouse), with what order priority
  needs — index ranges on ``order_lines (sku, status)`` over the active lines; :func:`open_orders_at`: the open
  orders with a line there (what-if's reach);
- :func:`reallocation_choice` and :func:`substitute_choice`: domain.md §4's first two branches of
  ``INVENTORY_SHORTFALL``, on plain inputs;
- :func:`donors_for` and :func:`reassignment`: the donors of a line, lowest priority first, and the
  decision's donor and quantity.

Where domain.md is silent: a negative available (bad data) counts as 0 when the quantity to take
is computed, so a reassignment never allocates a line beyond its qty; lines of the recipient's own
order are never donors (they share its priority).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tools import rules
from tools.db import one_of
from tools.models import Customer, Order, OrderLine

__all__ = [
    "DONOR_ORDER_STATUSES",
    "DonorRec",
    "donors_for",
    "load_donors",
    "open_orders_at",
    "reallocation_choice",
    "reassignment",
    "substitute_choice",
]

DONOR_ORDER_STATUSES = rules.OPEN_ORDER_STATUSES
_CHUNK = 400  # (sku, warehouse) pairs per query


@dataclass(frozen=True, slots=True)
class DonorRec:
    """A line holding allocation of ``sku`` at ``warehouse_id`` (where it ships from)."""

    order_id: str
    line_no: int
    sku: str
    warehouse_id: str
    allocated_qty: int
    customer_id: str | None
    tier: str | None
    promised_date: dt.date | None
    order_date: dt.date | None
    # domain.md §6 order priority of its order (tools.rules.order_priority_key): computed once, as
    # every short line of the (sku, warehouse) compares and sorts its donors by it
    priority: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = rules.order_priority_key(self.tier, self.promised_date, self.order_date, self.order_id)
        object.__setattr__(self, "priority", key)

    def as_fact(self) -> dict:
        return {
            "order_id": self.order_id,
            "line_no": self.line_no,
            "customer_id": self.customer_id,
            "tier": self.tier,
            "promised_date": self.promised_date.isoformat() if self.promised_date else None,
            "allocated_qty": self.allocated_qty,
        }


_INDEX = "ix_order_lines_sku_status"


def _rows_at(session: Session, keys: Iterable[tuple[str, str]], columns: list, *where) -> Iterator[Any]:
    """Rows of ``columns`` (the first two labelled ``sku`` and ``ship_from``) of the lines that
    ship one of the (sku, warehouse) ``keys`` — neither shipped nor cancelled, of an open, held or
    released order — one query per 400 keys, an index range on ``ix_order_lines_sku_status`` per
    SKU and active status: the active lines of the keys' SKUs, their own warehouse one of the keys'
    or empty (inheriting their order's), kept when (sku, where they ship from) is a key. Shipped
    history is most of a SKU's lines and grows every day: a range on (sku, warehouse) read it all
    (on SQLite 3x slower at 1M lines). SQLite is told the index (it has no statistics to prefer
    it over the orders' status index)."""
    keys = sorted({k for k in keys if k[0] and k[1]})
    ol, o = OrderLine.__table__, Order.__table__
    for i in range(0, len(keys), _CHUNK):
        part = set(keys[i : i + _CHUNK])
        skus, whs = sorted({s for s, _ in part}), sorted({w for _, w in part})
        stmt = (
            select(*columns)
            .select_from(ol.join(o, o.c.order_id == ol.c.order_id))
            .where(
                one_of(session, ol.c.sku, skus),
                ol.c.status.in_(rules.ACTIVE_LINE_STATUSES),
                or_(one_of(session, ol.c.warehouse_id, whs), ol.c.warehouse_id.is_(None)),
                o.c.status.in_(DONOR_ORDER_STATUSES),
                *where,
            )
            .with_hint(ol, f"INDEXED BY {_INDEX}", "sqlite")
        )
        for row in session.execute(stmt).all():
            if (row.sku, row.ship_from) in part:
                yield row


def load_donors(
    session: Session, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[DonorRec, ...]]:
    """Every line of an open, held or released order, neither shipped nor cancelled, holding
    allocation (allocated_qty > 0) of one of the (sku, warehouse) ``keys``, by key (one query
    per 400 keys: :func:`_rows_at`)."""
    ol, o, c = OrderLine.__table__, Order.__table__, Customer.__table__
    ship_from = func.coalesce(ol.c.warehouse_id, o.c.warehouse_id)
    tier = select(c.c.tier).where(c.c.customer_id == o.c.customer_id).scalar_subquery()
    columns = [
        ol.c.sku.label("sku"),
        ship_from.label("ship_from"),
        ol.c.order_id,
        ol.c.line_no,
        ol.c.allocated_qty,
        o.c.customer_id,
        tier.label("tier"),
        o.c.promised_date,
        o.c.order_date,
    ]
    out: dict[tuple[str, str], list[DonorRec]] = {}
    for row in _rows_at(session, keys, columns, ol.c.allocated_qty > 0):
        sku, wh, *rest = row
        out.setdefault((sku, wh), []).append(DonorRec(rest[0], rest[1], sku, wh, *rest[2:]))
    return {k: tuple(sorted(v, key=lambda d: (d.order_id, d.line_no))) for k, v in out.items()}


def open_orders_at(session: Session, keys: Iterable[tuple[str, str]]) -> set[str]:
    """The open, held or released orders with a line (neither shipped nor cancelled) shipping one
    of the (sku, warehouse) ``keys``: the orders a change of that stock can affect."""
    ol, o = OrderLine.__table__, Order.__table__
    columns = [
        ol.c.sku.label("sku"),
        func.coalesce(ol.c.warehouse_id, o.c.warehouse_id).label("ship_from"),
        ol.c.order_id,
    ]
    return {row.order_id for row in _rows_at(session, keys, columns)}


def donors_for(donors: Iterable[DonorRec], order_id: str, priority: tuple) -> list[DonorRec]:
    """The lines of orders of lower priority than ``priority`` (not ``order_id``'s own), lowest
    priority first, then the lower line_no: the order in which §6 takes their units."""
    below = [d for d in donors if d.order_id != order_id and d.priority > priority]
    below.sort(key=lambda d: d.line_no)
    below.sort(key=lambda d: d.priority, reverse=True)  # stable: line_no order kept within an order
    return below


def reassignment(donors: list[DonorRec], open_qty: int, available: int) -> tuple[DonorRec, int] | None:
    """§6's decision: the first (lowest-priority) donor and qty = min(its allocated_qty, open
    quantity − available); None unless available + the donors' allocated_qty ≥ the open quantity."""
    if not donors or open_qty <= available or available + sum(d.allocated_qty for d in donors) < open_qty:
        return None
    first = donors[0]
    return first, min(first.allocated_qty, open_qty - max(available, 0))


def reallocation_choice(
    *,
    sku: str | None,
    qty: int,
    here: str | None,
    warehouses: Mapping[str, tuple[str | None, str | None]],
    available: Callable[[str, str], int],
    export_controlled: bool,
    export_license: bool | None,
    ship_to_country: str | None,
) -> tuple[tuple[str, int, bool] | None, list[str]]:
    """§4 REALLOCATE_WAREHOUSE: ((warehouse, available, other region), blocked warehouses).

    Another warehouse with available ≥ the line's whole qty; same region first, then most
    available, then the lower warehouse_id; never one whose country would raise a COMPLIANCE_HOLD
    (:func:`tools.rules.export_hold`; those are returned as blocked). ``warehouses``: id -> (region,
    country); ``export_license`` None: no customer record, the licence is unknown.
    """
    region = warehouses.get(here or "", (None, None))[0]
    blocked, options = [], []
    for wh, (wh_region, wh_country) in warehouses.items():
        if wh == here or not sku:
            continue
        have = available(sku, wh)
        if have < qty:
            continue
        if rules.export_hold(
            export_controlled=export_controlled,
            export_license=export_license,
            ship_to_country=ship_to_country,
            origin_country=wh_country,
        ):
            blocked.append(wh)
            continue
        options.append((wh_region != region or region is None, -have, wh))
    if not options:
        return None, sorted(blocked)
    other_region, minus_have, wh = min(options)
    return (wh, -minus_have, other_region), sorted(blocked)


def substitute_choice(
    *,
    substitutes: Iterable[tuple[str, bool, Decimal]],
    need: int,
    unit_price: Decimal,
    available: Callable[[str], int],
) -> tuple[str, Decimal, int] | None:
    """§4 APPROVE_SUBSTITUTION: the approved substitute with available ≥ ``need`` at the line's
    warehouse — list price ≤ unit_price first, then most available, then sku; None when none.
    ``substitutes``: (substitute sku, approved, list price)."""
    stocked = [(s, p, available(s)) for s, ok, p in substitutes if ok and available(s) >= need]
    if not stocked:
        return None
    return min(stocked, key=lambda t: (t[1] > unit_price, -t[2], t[0]))
