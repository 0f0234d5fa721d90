"""Exception detection (domain.md §2): every exception type that holds on one order, with evidence.

Deterministic, no model. :func:`load_context` reads what the rules need in a fixed number of
queries into frozen records (safe to use after the session is gone); :func:`detect` is a pure
function of that context and the policy. Each :class:`Detected` carries human-readable evidence
and the same numbers as JSON-serialisable ``facts`` (money as decimal strings, dates ISO).

Where domain.md is silent:
- a contract with an empty ``valid_to`` is open-ended;
- the recurrence window holds orders dated 0..window_days days before this one, bounds included;
- the earliest open purchase order is the one with the earliest expected_date (then po_id); one
  without an expected_date assures nothing, so it counts as late;
- facts that are missing (a SKU not in items, no warehouse, no customer, an empty order_date or
  promised_date, an empty ship_to_country for export control) make only the rules that need them
  skip; :attr:`OrderContext.missing` says what was missing. A missing inventory row is stock 0.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from agent.policy import Policy, Substitution
from agent.triage.allocation import (
    DonorRec,
    donors_for,
    load_donors,
    reallocation_choice,
    reassignment,
    substitute_choice,
)
from tools import rules
from tools.db import one_of
from tools.errors import OrderNotFound
from tools.models import (
    Carrier,
    Customer,
    ExceptionRecord,
    Inventory,
    Item,
    Order,
    OrderLine,
    PriceContract,
    PurchaseOrder,
    Shipment,
    Substitute,
    Warehouse,
)

__all__ = [
    "ContractRec",
    "CustomerRec",
    "Detected",
    "ItemRec",
    "LineRec",
    "OrderContext",
    "OrderNotFound",
    "OrderRec",
    "PORec",
    "ShipmentRec",
    "StockRec",
    "SubRec",
    "WarehouseRec",
    "credit_position",
    "detect",
    "detect_many",
    "detect_open_book",
    "detect_order",
    "detect_recorded",
    "effective_price",
    "export_hold",
    "iter_open_book",
    "load_context",
    "load_contexts",
    "load_contexts_with_neighbours",
    "load_light_contexts",
    "rule_hits",
    "substitution_keyword",
]

RECURRENCE_STATUSES = rules.OPEN_ORDER_STATUSES
_empty = rules.is_empty


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


# ----------------------------------------------------------------------------------------------
# The records the rules read: frozen copies of the columns of tools.models (domain.md §1 names)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRec:
    order_id: str
    customer_id: str | None
    order_date: dt.date | None
    promised_date: dt.date | None
    status: str
    credit_released: bool
    warehouse_id: str | None
    ship_to_street: str | None
    ship_to_city: str | None
    ship_to_postal_code: str | None
    ship_to_country: str | None
    customer_note: str | None


@dataclass(frozen=True, slots=True)
class LineRec:
    order_id: str
    line_no: int
    sku: str | None
    qty: int
    unit_price: Decimal
    warehouse_id: str | None
    allocated_qty: int
    backorder_qty: int
    status: str
    original_sku: str | None

    @property
    def open_qty(self) -> int:
        return self.qty - self.allocated_qty


@dataclass(frozen=True, slots=True)
class CustomerRec:
    customer_id: str
    credit_limit: Decimal
    open_balance: Decimal
    overdue_balance: Decimal
    credit_hold: bool
    export_license: bool
    # read by planning (agent.triage.plan), loaded with the rest so planning needs no query of its own
    tier: str | None = None
    allow_substitutions: bool = False
    allow_partial_shipments: bool = False


@dataclass(frozen=True, slots=True)
class ItemRec:
    sku: str
    list_price: Decimal
    status: str
    export_controlled: bool


@dataclass(frozen=True, slots=True)
class WarehouseRec:
    warehouse_id: str
    country: str | None
    region: str | None = None  # read by planning


@dataclass(frozen=True, slots=True)
class StockRec:
    sku: str
    warehouse_id: str
    on_hand: int
    allocated: int


@dataclass(frozen=True, slots=True)
class ContractRec:
    customer_id: str
    sku: str
    valid_from: dt.date
    valid_to: dt.date | None
    contract_price: Decimal


@dataclass(frozen=True, slots=True)
class ShipmentRec:
    shipment_id: str
    carrier_id: str | None
    status: str
    eta: dt.date | None
    carrier_status: str | None  # None: the carrier is not in carriers
    service_level: str | None = None  # read by planning: an express shipment cannot be expedited


@dataclass(frozen=True, slots=True)
class PORec:
    po_id: str
    sku: str
    warehouse_id: str
    expected_date: dt.date | None
    expedite_requested: bool = False


@dataclass(frozen=True, slots=True)
class SubRec:
    sku: str
    substitute_sku: str
    approved: bool


@dataclass(frozen=True, slots=True)
class OrderContext:
    """One order and the records its rules read. Lookup maps may hold records of other orders
    loaded in the same batch; ``neighbours`` are the recurrence candidates (see load_context)."""

    order: OrderRec
    lines: tuple[LineRec, ...]
    customer: CustomerRec | None
    items: Mapping[str, ItemRec]
    warehouses: Mapping[str, WarehouseRec]
    stock: Mapping[tuple[str, str], StockRec]
    contracts: Mapping[tuple[str, str], tuple[ContractRec, ...]]
    shipments: tuple[ShipmentRec, ...]
    open_pos: Mapping[tuple[str, str], tuple[PORec, ...]]  # earliest first
    neighbours: tuple[OrderContext, ...] = ()
    # the substitutes of the lines' SKUs (their items and stock are in items and stock)
    substitutes: Mapping[str, tuple[SubRec, ...]] = field(default_factory=dict)
    # (sku, warehouse) of each short line -> the lines of open orders holding allocation there (§6)
    donors: Mapping[tuple[str, str], tuple[DonorRec, ...]] = field(default_factory=dict)

    @property
    def priority(self) -> tuple:
        """domain.md §6 order priority of this order (smaller is served first)."""
        o = self.order
        tier = self.customer.tier if self.customer else None
        return rules.order_priority_key(tier, o.promised_date, o.order_date, o.order_id)

    @property
    def active_lines(self) -> tuple[LineRec, ...]:
        return tuple(line for line in self.lines if not rules.is_closed(line.status))

    def ship_from(self, line: LineRec) -> str | None:
        """The line's own warehouse, else the order's; None when neither is set."""
        return rules.ship_from(line.warehouse_id, self.order.warehouse_id)

    def available(self, sku: str, warehouse_id: str) -> int:
        stock = self.stock.get((sku, warehouse_id))
        return stock.on_hand - stock.allocated if stock else 0

    @property
    def order_value(self) -> Decimal:
        return rules.order_value(self.lines)

    def origin_country(self, line: LineRec) -> str | None:
        """The country of the warehouse the line ships from; None when it is unknown."""
        wh = self.warehouses.get(self.ship_from(line) or "")
        return wh.country if wh else None

    @property
    def missing(self) -> tuple[str, ...]:
        """The facts this order refers to but the records lack; rules needing them were skipped."""
        o, out = self.order, []
        if self.customer is None:
            out.append(f"customer {o.customer_id!r} of order {o.order_id} is not in customers")
        for name in ("order_date", "promised_date"):
            if getattr(o, name) is None:
                out.append(f"order {o.order_id} has no {name}")
        for line in self.active_lines:
            for name in ("sku", "original_sku"):
                sku = getattr(line, name)
                if name == "sku" and _empty(sku):
                    out.append(f"line {line.line_no} has no sku")
                elif not _empty(sku) and sku not in self.items:
                    out.append(f"{name} {sku} of line {line.line_no} is not in items (dangling reference)")
            wh = self.ship_from(line)
            if wh is None:
                out.append(f"line {line.line_no} has no warehouse, nor has order {o.order_id}")
            elif wh not in self.warehouses:
                out.append(f"warehouse {wh} of line {line.line_no} is not in warehouses")
        for s in self.shipments:
            if s.carrier_status is None:
                out.append(f"carrier {s.carrier_id!r} of shipment {s.shipment_id} is not in carriers")
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class Detected:
    """One exception instance: ``instance_key`` is ``order``, ``line:N``, ``shipment:ID`` or, for
    RECURRING_ANOMALY, ``sku:SKU:TYPE`` / ``customer:ID:TYPE`` (one per recurring pattern)."""

    type: str
    instance_key: str
    evidence: tuple[str, ...]
    facts: Mapping[str, Any] = field(default_factory=dict, hash=False)
    line_no: int | None = None
    shipment_id: str | None = None
    sku: str | None = None
    warehouse_id: str | None = None


# ----------------------------------------------------------------------------------------------
# Loading: a fixed number of queries per batch of orders
# ----------------------------------------------------------------------------------------------


def _fetch(session: Session, rec: type, table: Table, column: str, values: Iterable, *where) -> list:
    """Records of type ``rec`` from ``table`` where ``column`` is in ``values`` (chunked)."""
    cols = [table.c[f.name] for f in fields(rec)]  # the record's field order: rows unpack positionally
    out: list = []
    for part in rules.in_chunks(values):
        stmt = select(*cols).where(one_of(session, table.c[column], part), *where)
        out.extend(rec(*row) for row in session.execute(stmt).all())
    return out


def load_contexts(session: Session, order_ids: Iterable[str]) -> dict[str, OrderContext]:
    """Contexts of many orders (without neighbours): ten queries, one more per 500 keys of a kind,
    and one more (the donors of domain.md §6) when a line is short of stock.

    Unknown order ids are left out of the result. The lookup maps hold more than the rules read,
    so that planning (agent.triage.plan) needs no second load: stock of the orders' SKUs and of
    their substitutes at every warehouse, the substitutes' items, and every warehouse (a small
    master table) with its region.
    """
    orders = _fetch(session, OrderRec, Order.__table__, "order_id", order_ids)
    by_id = {o.order_id: o for o in orders}
    lines: dict[str, list[LineRec]] = {}
    for line in _fetch(session, LineRec, OrderLine.__table__, "order_id", by_id):
        lines.setdefault(line.order_id, []).append(line)
    all_lines = [line for group in lines.values() for line in group]
    skus = {s for line in all_lines for s in (line.sku, line.original_sku) if not _empty(s)}
    whs = {
        w for w in ({o.warehouse_id for o in orders} | {x.warehouse_id for x in all_lines}) if not _empty(w)
    }
    customers = {
        c.customer_id: c
        for c in _fetch(
            session, CustomerRec, Customer.__table__, "customer_id", (o.customer_id for o in orders)
        )
    }
    inv, pc, po = Inventory.__table__, PriceContract.__table__, PurchaseOrder.__table__
    contracts: dict[tuple[str, str], tuple[ContractRec, ...]] = {}
    for deal in _fetch(
        session, ContractRec, pc, "sku", skus, one_of(session, pc.c.customer_id, list(customers))
    ):
        contracts[(deal.customer_id, deal.sku)] = (*contracts.get((deal.customer_id, deal.sku), ()), deal)
    open_pos: dict[tuple[str, str], list[PORec]] = {}
    for p in _fetch(
        session,
        PORec,
        po,
        "sku",
        skus,
        one_of(session, po.c.warehouse_id, sorted(whs)),
        po.c.status == "open",
    ):
        open_pos.setdefault((p.sku, p.warehouse_id), []).append(p)
    subs: dict[str, tuple[SubRec, ...]] = {}
    for sub in _fetch(session, SubRec, Substitute.__table__, "sku", skus):
        subs[sub.sku] = (*subs.get(sub.sku, ()), sub)
    with_subs = skus | {x.substitute_sku for group in subs.values() for x in group}
    items = {i.sku: i for i in _fetch(session, ItemRec, Item.__table__, "sku", with_subs)}
    subs = {  # a substitute that is not in items cannot be chosen
        sku: tuple(sorted((x for x in group if x.substitute_sku in items), key=lambda x: x.substitute_sku))
        for sku, group in subs.items()
    }
    wt = Warehouse.__table__
    warehouses = {
        w.warehouse_id: w
        for w in (
            WarehouseRec(*row)
            for row in session.execute(select(*(wt.c[f.name] for f in fields(WarehouseRec))))
        )
    }
    stock = {(s.sku, s.warehouse_id): s for s in _fetch(session, StockRec, inv, "sku", with_subs)}
    earliest = {key: tuple(sorted(pos, key=_po_order)) for key, pos in open_pos.items()}
    shipments = _shipments(session, by_id)
    contexts = {
        o.order_id: OrderContext(
            order=o,
            lines=tuple(sorted(lines.get(o.order_id, ()), key=lambda x: x.line_no)),
            customer=customers.get(o.customer_id or ""),
            items=items,
            warehouses=warehouses,
            stock=stock,
            contracts=contracts,
            shipments=tuple(shipments.get(o.order_id, ())),
            open_pos=earliest,
            substitutes=subs,
        )
        for o in orders
    }
    # §6: who holds the stock of each short line (one index range per batch, only when one is short)
    short = {
        (line.sku, gap[0])
        for ctx in contexts.values()
        if not rules.is_closed(ctx.order.status)
        for line in ctx.active_lines
        if line.sku is not None and (gap := _shortage(ctx, line))
    }
    if short:
        donors = load_donors(session, short)
        contexts = {oid: replace(ctx, donors=donors) for oid, ctx in contexts.items()}
    return contexts


_NONE: Mapping[Any, Any] = MappingProxyType({})  # what a light context does not load (read-only, shared)


def load_light_contexts(session: Session, scopes: Mapping[str, Iterable[str]]) -> dict[str, OrderContext]:
    """Contexts of many orders holding only what the named rules of each read (two to four queries
    per 500 orders): the order; its shipments with their carriers' status for
    ``CARRIER_DISRUPTION`` (read with the order, one query); its lines and its customer for
    ``CREDIT_HOLD``. For an order whose records changed only where those rules read them
    (:func:`agent.triage.service.record_batch`, ``scoped``); the other rules must not run on them:
    their stock, items and contracts are not loaded."""
    need = {oid: set(types) for oid, types in scopes.items()}
    carrier = [oid for oid, types in need.items() if "CARRIER_DISRUPTION" in types]
    orders, shipments = _orders_with_shipments(session, carrier) if carrier else ({}, {})
    rest = [oid for oid in need if oid not in orders]
    orders.update((o.order_id, o) for o in _fetch(session, OrderRec, Order.__table__, "order_id", rest))
    credit = [o for o in orders.values() if "CREDIT_HOLD" in need[o.order_id]]
    lines: dict[str, list[LineRec]] = {}
    customers: dict[str, CustomerRec] = {}
    if credit:
        for line in _fetch(session, LineRec, OrderLine.__table__, "order_id", [o.order_id for o in credit]):
            lines.setdefault(line.order_id, []).append(line)
        wanted = {o.customer_id for o in credit if o.customer_id}
        customers = {
            c.customer_id: c for c in _fetch(session, CustomerRec, Customer.__table__, "customer_id", wanted)
        }
    return {
        oid: OrderContext(
            order=o,
            lines=tuple(sorted(lines[oid], key=lambda x: x.line_no)) if oid in lines else (),
            customer=customers.get(o.customer_id or ""),
            items=_NONE,
            warehouses=_NONE,
            stock=_NONE,
            contracts=_NONE,
            shipments=tuple(shipments.get(oid, ())),
            open_pos=_NONE,
            substitutes=_NONE,
            donors=_NONE,
        )
        for oid, o in orders.items()
    }


def _orders_with_shipments(
    session: Session, order_ids: Iterable[str]
) -> tuple[dict[str, OrderRec], dict[str, list[ShipmentRec]]]:
    """Orders and their shipments (each with its carrier's status, as :func:`_shipments`) in one
    query per 500 orders: the orders left-joined to their shipments and carriers."""
    o, sh, ca = Order.__table__, Shipment.__table__, Carrier.__table__
    order_cols = [o.c[f.name] for f in fields(OrderRec)]
    n = len(order_cols)
    orders: dict[str, OrderRec] = {}
    shipments: dict[str, list[ShipmentRec]] = {}
    for part in rules.in_chunks(order_ids):
        stmt = (
            select(*order_cols, *_SHIPMENT_COLUMNS)
            .select_from(
                o.outerjoin(sh, sh.c.order_id == o.c.order_id).outerjoin(
                    ca, ca.c.carrier_id == sh.c.carrier_id
                )
            )
            .where(one_of(session, o.c.order_id, part))
            .order_by(o.c.order_id, sh.c.shipment_id)
        )
        for row in session.execute(stmt).all():
            oid = row[0]
            if oid not in orders:
                orders[oid] = OrderRec(*row[:n])
            if row[n] is not None:  # the order has this shipment
                shipments.setdefault(oid, []).append(ShipmentRec(*row[n:]))
    return orders, shipments


def _po_order(po: PORec) -> tuple:
    """Earliest expected first; one without an expected date last; then po_id."""
    return (po.expected_date is None, po.expected_date or dt.date.min, po.po_id)


# a shipment's columns in ShipmentRec's field order, its carrier's status among them (outer-joined)
_SHIPMENT_COLUMNS = (
    Shipment.__table__.c.shipment_id,
    Shipment.__table__.c.carrier_id,
    Shipment.__table__.c.status,
    Shipment.__table__.c.eta,
    Carrier.__table__.c.status.label("carrier_status"),
    Shipment.__table__.c.service_level,
)


def _shipments(session: Session, order_ids: Iterable[str]) -> dict[str, list[ShipmentRec]]:
    """Shipments per order, each with its carrier's status (None when the carrier is missing)."""
    sh, ca = Shipment.__table__, Carrier.__table__
    out: dict[str, list[ShipmentRec]] = {}
    for part in rules.in_chunks(order_ids):
        stmt = (
            select(sh.c.order_id, *_SHIPMENT_COLUMNS)
            .outerjoin(ca, ca.c.carrier_id == sh.c.carrier_id)
            .where(one_of(session, sh.c.order_id, part))
            .order_by(sh.c.shipment_id)
        )
        for oid, *values in session.execute(stmt).all():
            out.setdefault(oid, []).append(ShipmentRec(*values))
    return out


def load_context(session: Session, order_id: str, policy: Policy) -> OrderContext:
    """The order's context, with the recurrence candidates as ``neighbours``.

    Neighbours are loaded only for what can recur: when a base rule holds on this order, the
    orders of the same customer, and the orders with an active (not shipped or cancelled) line on
    a SKU that a line rule flagged — only such a line can raise a rule on that SKU — status
    open/held/released, dated in the recurrence window. Both lookups are index range scans that
    do not grow with closed history (``ix_orders_customer_order_date``; ``ix_order_lines_sku_status``
    reads only the SKU's active lines); one batch of :func:`load_contexts` loads them all: the
    number of queries is fixed; the rows grow with the number of such orders in the window.
    """
    ctx = load_contexts(session, [order_id]).get(order_id)
    if ctx is None:
        raise OrderNotFound(order_id)
    found = _base(ctx, policy, RULES)
    if not found or ctx.order.order_date is None:
        return ctx
    o, ol = Order.__table__, OrderLine.__table__
    day = ctx.order.order_date
    window_days = policy.thresholds.recurrence.window_days
    window = (
        o.c.order_date.between(rules.days_from(day, -window_days), day),
        o.c.status.in_(RECURRENCE_STATUSES),
        o.c.order_id != order_id,
    )
    ids: set[str] = set()
    if ctx.order.customer_id:
        same_customer = select(o.c.order_id).where(o.c.customer_id == ctx.order.customer_id, *window)
        ids.update(session.scalars(same_customer))
    for part in rules.in_chunks(d.sku for d in found if d.sku):
        # Driven from the SKU's active lines (an index range), not from the window's orders.
        stmt = select(ol.c.order_id).where(
            one_of(session, ol.c.sku, part), ol.c.status.in_(rules.ACTIVE_LINE_STATUSES)
        )
        ids.update(session.scalars(stmt.distinct()))
    ids.discard(order_id)
    neighbours = load_contexts(session, ids)
    return replace(
        ctx,
        neighbours=tuple(
            neighbours[k] for k in sorted(neighbours) if _in_window(day, neighbours[k].order, window_days)
        ),
    )


def load_contexts_with_neighbours(
    session: Session, order_ids: Iterable[str], policy: Policy
) -> dict[str, OrderContext]:
    """:func:`load_context` of many orders at once: each context the same as its own call gives,
    with a fixed number of queries per batch instead of per order (unknown ids left out).

    The recurrence candidates of all the orders are found together — the orders of their customers
    and those with an active line on a SKU a line rule flagged, status open/held/released, dated
    between the earliest order's window start and the latest order's date — and loaded in one
    :func:`load_contexts` with the orders themselves; each order then keeps the candidates inside
    its own window, as :func:`load_context` does. The lookups are the same index ranges, bounded by
    the window, so the cost follows the orders named and their neighbours, not the book.
    """
    contexts = load_contexts(session, order_ids)
    window_days = policy.thresholds.recurrence.window_days
    wanted: dict[str, tuple[dt.date, str | None, set[str]]] = {}
    for oid, ctx in contexts.items():
        found = _base(ctx, policy, RULES)
        if found and ctx.order.order_date is not None:
            wanted[oid] = (ctx.order.order_date, ctx.order.customer_id, {d.sku for d in found if d.sku})
    if not wanted:
        return contexts
    o, ol = Order.__table__, OrderLine.__table__
    first = rules.days_from(min(day for day, _, _ in wanted.values()), -window_days)
    last = max(day for day, _, _ in wanted.values())
    window = (o.c.order_date.between(first, last), o.c.status.in_(RECURRENCE_STATUSES))
    by_customer: dict[str, set[str]] = {}
    for part in rules.in_chunks(c for _, c, _ in wanted.values()):
        stmt = select(o.c.customer_id, o.c.order_id).where(one_of(session, o.c.customer_id, part), *window)
        for customer, oid in session.execute(stmt):
            by_customer.setdefault(customer, set()).add(oid)
    by_sku: dict[str, set[str]] = {}
    for part in rules.in_chunks(s for _, _, skus in wanted.values() for s in skus):
        stmt = (
            select(ol.c.sku, ol.c.order_id)
            .join(o, o.c.order_id == ol.c.order_id)
            .where(one_of(session, ol.c.sku, part), ol.c.status.in_(rules.ACTIVE_LINE_STATUSES), *window)
            .distinct()
        )
        for sku, oid in session.execute(stmt):
            by_sku.setdefault(sku, set()).add(oid)
    candidates: dict[str, set[str]] = {}
    for oid, (_, customer, skus) in wanted.items():
        ids = set(by_customer.get(customer, ())) if customer else set()
        for sku in skus:
            ids |= by_sku.get(sku, set())
        ids.discard(oid)
        candidates[oid] = ids
    more = {n for ids in candidates.values() for n in ids} - contexts.keys()
    loaded = {**load_contexts(session, more), **contexts}
    out = dict(contexts)
    for oid, ids in candidates.items():
        day = wanted[oid][0]
        out[oid] = replace(
            contexts[oid],
            neighbours=tuple(
                loaded[k]
                for k in sorted(ids)
                if k in loaded and _in_window(day, loaded[k].order, window_days)
            ),
        )
    return out


def detect_order(session: Session, order_id: str, policy: Policy) -> list[Detected]:
    """Load and detect in one call; raises :class:`OrderNotFound`."""
    return detect(load_context(session, order_id, policy), policy)


def detect(ctx: OrderContext, policy: Policy) -> list[Detected]:
    """Every exception instance that holds on ``ctx.order``, in the policy's priority order.

    Recurrence counts ``ctx.neighbours``: load the context with the same policy.
    """
    found = _base(ctx, policy, RULES)
    found += _recurring(ctx, found, policy)
    priority = policy.decision_order.rank()
    return _ordered(found, priority)


def detect_many(contexts: Mapping[str, OrderContext], policy: Policy) -> dict[str, list[Detected]]:
    """:func:`detect` of each context, by order id, for contexts loaded together
    (:func:`load_contexts_with_neighbours`: one context per order, shared as a neighbour): each
    order's base rules run once for the batch, however many of its orders count it in their
    recurrence window."""
    base: dict[str, list[Detected]] = {}

    def base_of(c: OrderContext) -> list[Detected]:
        oid = c.order.order_id
        if oid not in base:
            base[oid] = _base(c, policy, RULES)
        return base[oid]

    priority = policy.decision_order.rank()
    out: dict[str, list[Detected]] = {}
    for oid, ctx in contexts.items():
        found = list(base_of(ctx))
        found += _recurring(ctx, found, policy, base_of)
        out[oid] = _ordered(found, priority)
    return out


def detect_recorded(
    session: Session,
    contexts: Mapping[str, OrderContext],
    policy: Policy,
    *,
    base: Mapping[str, list[Detected]] | None = None,
) -> dict[str, list[Detected]]:
    """:func:`detect_many` of contexts loaded without neighbours (:func:`load_contexts`), the
    recurrence of each order counted from the recorded exceptions of the other orders instead of
    their base rules run again: the same detections, with two queries per batch whatever the book.

    A (type, customer) or (type, SKU) pattern of an order dated D counts the orders with status
    open/held/released dated D - window_days .. D that have an open exception of that type (not
    RECURRING_ANOMALY) recorded with that customer or SKU — what :func:`_patterns` gives of their
    base hits, since :func:`agent.triage.service.record_exceptions` records each hit's type, SKU
    (a line hit's: only line hits carry one) and the order's customer. The orders of the batch
    count by their fresh base hits, never by their rows (the changes being triaged may have made
    those stale). The lookups are index ranges on the open exceptions of the batch's types and
    customers or SKUs (``ix_exceptions_type_customer_status``, ``ix_exceptions_type_sku_status``).

    Valid only while the recorded exceptions are every open-book order's base hits for the data as
    it is — :func:`tools.dataset.exceptions_recorded`: a whole pass of triage recorded the book
    since the data was loaded, and every change since went through a path that triages again
    what it affects (the event worker, the executor). The caller checks it
    (:func:`agent.triage.service.triage_batch`); without it, recurrence loads the neighbours
    (:func:`load_contexts_with_neighbours`).

    ``base``: the base hits of some orders when the caller has them (an order whose records changed
    only where one rule reads them: its other hits are its recorded rows, :func:`agent.triage.service.record_batch`);
    the others' are found by running the rules on their contexts.
    """
    rule = policy.thresholds.recurrence
    base = {
        oid: _base(ctx, policy, RULES) for oid, ctx in contexts.items() if oid not in (base or {})
    } | dict(base or {})
    keys = {oid: _patterns(ctx, base[oid]) for oid, ctx in contexts.items()}
    days = {
        oid: day for oid, ctx in contexts.items() if base[oid] and (day := ctx.order.order_date) is not None
    }
    recorded: dict[tuple[str, str, str], dict[str, dt.date]] = {}  # orders outside the batch
    if days:
        x, o = ExceptionRecord.__table__, Order.__table__
        wanted = {key for oid in days for key in keys[oid]}
        where = (
            x.c.status == "open",
            x.c.type.in_(sorted({kind for kind, _, _ in wanted})),
            o.c.status.in_(RECURRENCE_STATUSES),
            o.c.order_date.between(
                rules.days_from(min(days.values()), -rule.window_days), max(days.values())
            ),
        )
        for by, column in (("customer", x.c.customer_id), ("sku", x.c.sku)):
            values = {value for _, side, value in wanted if side == by}
            for part in rules.in_chunks(values):
                stmt = (
                    select(x.c.type, column, o.c.order_id, o.c.order_date)
                    .join(o, o.c.order_id == x.c.order_id)
                    .where(one_of(session, column, part), *where)
                    .distinct()
                )
                for kind, value, oid, day in session.execute(stmt).all():
                    if oid not in contexts and (kind, by, value) in wanted:
                        recorded.setdefault((kind, by, value), {})[oid] = day
    # each pattern's recorded orders by date, for the window of each order of the batch (bisection:
    # a carrier's disruption puts thousands of orders of one customer in a batch)
    dated = {key: sorted((day, oid) for oid, day in group.items()) for key, group in recorded.items()}
    batch: dict[tuple[str, str, str], list[OrderRec]] = {}
    for oid, ctx in contexts.items():
        for key in keys[oid]:
            batch.setdefault(key, []).append(ctx.order)
    priority = policy.decision_order.rank()
    # The orders a pattern counts for an order dated ``day`` are the same for every order of the
    # batch with that pattern and date (it counts itself among them): counted, and its finding
    # written, once per (pattern, day) — a carrier's disruption brings hundreds of one customer's
    # orders, and each finding lists every order counted.
    counted: dict[tuple[tuple[str, str, str], dt.date], dict[str, dt.date]] = {}
    made: dict[tuple[tuple[str, str, str], dt.date], list[Detected]] = {}
    out: dict[str, list[Detected]] = {}
    for oid in contexts:
        found = list(base[oid])
        day = days.get(oid)
        if day is None:
            out[oid] = _ordered(found, priority)
            continue
        for key in keys[oid]:
            at = (key, day)
            hits = counted.get(at)
            if hits is None:
                group = dated.get(key, ())
                lo = bisect_left(group, (rules.days_from(day, -rule.window_days),))
                hi = bisect_right(group, day, key=lambda t: t[0])  # not day + 1: 9999-12-31 has none
                hits = {other: when for when, other in group[lo:hi]}
                hits.update(
                    (other.order_id, other.order_date)
                    for other in batch[key]
                    if other.order_date is not None and _in_window(day, other, rule.window_days)
                )
                counted[at] = hits
            if oid in hits:  # what every order of this pattern and date finds
                if at not in made:
                    made[at] = _recurrence_findings(day, {key: hits}, policy)
                found += made[at]
            else:  # an order counted by none (not open, held or released): itself and the others
                found += _recurrence_findings(day, {key: {oid: day, **hits}}, policy)
        out[oid] = _ordered(found, priority)
    return out


def _ordered(found: Iterable[Detected], priority: Mapping[str, int]) -> list[Detected]:
    """Detections in the policy's priority order (``decision_order.rank()``), then line, shipment
    and instance: the order every detection entry returns them in."""
    return sorted(
        found, key=lambda d: (priority[d.type], d.line_no or 0, d.shipment_id or "", d.instance_key)
    )


def _base(ctx: OrderContext, policy: Policy, types: Iterable[str]) -> list[Detected]:
    if rules.is_closed(ctx.order.status):
        return []
    return [d for kind in types for d in RULES[kind](ctx, policy)]


def rule_hits(ctx: OrderContext, policy: Policy, types: Iterable[str]) -> list[Detected]:
    """The hits of the base rules ``types`` only (none on a closed order), in the order given."""
    return _base(ctx, policy, types)


# ----------------------------------------------------------------------------------------------
# The rules, one per exception type
# ----------------------------------------------------------------------------------------------


def _line_hit(kind: str, ctx: OrderContext, line: LineRec, evidence: list[str], facts: dict) -> Detected:
    return Detected(
        type=kind,
        instance_key=f"line:{line.line_no}",
        line_no=line.line_no,
        sku=line.sku,
        warehouse_id=ctx.ship_from(line),
        evidence=tuple(evidence),
        facts={"line_no": line.line_no, **facts},
    )


def _credit_hold(ctx: OrderContext, policy: Policy) -> list[Detected]:
    o, c = ctx.order, ctx.customer
    if not rules.credit_hold_applies(o.status, o.credit_released) or c is None:
        return []
    position = rules.CreditPosition.of(c, ctx.lines)
    value, exposure = position.order_value, position.exposure
    reasons = []
    if c.credit_hold:
        reasons.append(f"customer {c.customer_id} is on credit hold")
    if position.over_limit:
        reasons.append(
            f"open balance {c.open_balance} + order value {value} = {exposure} > credit limit "
            f"{c.credit_limit} (overage {position.overage})"
        )
    if position.overdue:
        reasons.append(f"customer {c.customer_id} has an overdue balance of {c.overdue_balance}")
    if not reasons:
        return []
    evidence = (f"order {o.order_id} is {o.status} and not credit-released", *reasons)
    facts = {
        "customer_id": c.customer_id,
        "credit_hold": c.credit_hold,
        "credit_limit": str(c.credit_limit),
        "open_balance": str(c.open_balance),
        "overdue_balance": str(c.overdue_balance),
        "order_value": str(value),
        "overage": str(position.overage),
    }
    return [Detected(type="CREDIT_HOLD", instance_key="order", evidence=evidence, facts=facts)]


def credit_position(ctx: OrderContext) -> rules.CreditPosition | None:
    """The customer's credit position with this order's value; None without a customer record."""
    return None if ctx.customer is None else rules.CreditPosition.of(ctx.customer, ctx.lines)


def effective_price(ctx: OrderContext, line: LineRec) -> tuple[Decimal, ContractRec | None] | None:
    """(price, the contract applied or None for the list price) of the line on the order's date, priced
    on its original sku when substituted (:func:`tools.rules.effective_price`); None when unknown."""
    sku = rules.priced_sku(line.sku, line.original_sku)
    if sku is None:
        return None
    item = ctx.items.get(sku)
    contracts = ctx.contracts.get((ctx.order.customer_id or "", sku), ())
    return rules.effective_price(contracts, item.list_price if item else None, ctx.order.order_date)


def _pricing(ctx: OrderContext, policy: Policy) -> list[Detected]:
    tolerance = policy.thresholds.price_tolerance_pct
    out = []
    for line in ctx.active_lines:
        found = effective_price(ctx, line)
        if found is None:
            continue
        basis = rules.priced_sku(line.sku, line.original_sku)
        effective, contract = found
        valid_from = contract.valid_from if contract else None
        source = f"contract valid from {valid_from}" if contract else "list price"
        diff = abs(line.unit_price - effective)
        if diff <= effective * tolerance / 100:
            continue
        pct = f"{diff * 100 / effective:.2f} %" if effective else "n/a"
        evidence = [
            f"unit price {line.unit_price} on line {line.line_no} differs by {diff} ({pct}) from the effective "
            f"price {effective} ({source} for SKU {basis}), beyond the {tolerance:f} % tolerance"
        ]
        if basis != line.sku:
            evidence.append(
                f"line {line.line_no} was substituted from {basis} to {line.sku}: priced on {basis}"
            )
        out.append(
            _line_hit(
                "PRICING_DISCREPANCY",
                ctx,
                line,
                evidence,
                {
                    "unit_price": str(line.unit_price),
                    "effective_price": str(effective),
                    "price_sku": basis,
                    "price_source": "contract" if valid_from else "list_price",
                    "contract_valid_from": _iso(valid_from),
                    "difference": str(diff),
                    "tolerance_pct": str(tolerance),
                },
            )
        )
    return out


def _shortage(ctx: OrderContext, line: LineRec) -> tuple[str, int, str] | None:
    """(warehouse, available, evidence) when the line's open qty exceeds its available stock."""
    wh, sku = ctx.ship_from(line), line.sku
    if sku is None or _empty(sku) or wh is None:
        return None
    available = ctx.available(sku, wh)
    if line.open_qty <= available:
        return None
    stock = ctx.stock.get((sku, wh))
    how = (
        f"on hand {stock.on_hand} - allocated {stock.allocated}" if stock else "no inventory row: taken as 0"
    )
    fact = (
        f"available {available} ({how}) at {wh} < open qty {line.open_qty} (qty {line.qty} - allocated "
        f"{line.allocated_qty}) for SKU {line.sku} on line {line.line_no}"
    )
    return wh, available, fact


def _inventory(ctx: OrderContext, policy: Policy) -> list[Detected]:
    out = []
    for line in ctx.active_lines:
        short = _shortage(ctx, line)
        if short:
            wh, available, fact = short
            evidence = [fact] + ([f"SKU {line.sku} is not in items"] if line.sku not in ctx.items else [])
            out.append(
                _line_hit(
                    "INVENTORY_SHORTFALL",
                    ctx,
                    line,
                    evidence,
                    {
                        "open_qty": line.open_qty,
                        "available": available,
                        "shortfall": line.open_qty - available,
                        "warehouse_id": wh,
                    },
                )
            )
    return out


_CLAUSE = re.compile(r"[.,;:!?\n]+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _phrase_at(words: list[str], j: int, phrases: list[tuple[str, ...]]) -> bool:
    return any(tuple(words[j : j + len(p)]) == p for p in phrases)


def _has_phrase(words: list[str], phrases: list[tuple[str, ...]]) -> bool:
    return any(_phrase_at(words, j, phrases) for j in range(len(words)))


def substitution_keyword(note: str | None, rule: Substitution) -> str | None:
    """The keyword by which ``note`` asks for a substitute, or None.

    A keyword (or its plural) asks unless, in the same clause (clauses end at . , ; : ! ? and line
    breaks), a negation phrase lies within the ``negation_window_words`` words before it — "no
    substitutions", "please do not substitute" — or a ``negations_after`` word within the
    ``negation_after_window_words`` words after it with no conditional between — "substitutes are
    not acceptable", "a replacement won't work"; "substitute if not in stock" and "no backorders,
    substitutes welcome" ask.
    """
    if note is None or _empty(note):
        return None
    keywords = {k.lower() for k in rule.keywords}
    negations = [tuple(_WORD.findall(n.lower())) for n in rule.negations]
    after = [tuple(_WORD.findall(n.lower())) for n in rule.negations_after]
    conditionals = [tuple(_WORD.findall(n.lower())) for n in rule.conditionals]
    for clause in _CLAUSE.split(note.lower().replace("\u2019", "'")):
        words = _WORD.findall(clause)
        for i, word in enumerate(words):
            keyword = word if word in keywords else word[:-1] if word.endswith("s") else None
            if keyword not in keywords:
                continue
            if _has_phrase(words[max(0, i - rule.negation_window_words) : i], negations):
                continue
            following = words[i + 1 : i + 1 + rule.negation_after_window_words]
            cut = next(
                (j for j in range(len(following)) if _phrase_at(following, j, conditionals)), len(following)
            )
            if _has_phrase(following[:cut], after):
                continue
            return keyword
    return None


def _substitution(ctx: OrderContext, policy: Policy) -> list[Detected]:
    keyword = substitution_keyword(ctx.order.customer_note, policy.thresholds.substitution)
    out = []
    for line in ctx.active_lines:
        item = ctx.items.get(line.sku or "")
        evidence = []
        if item and item.status == "discontinued":
            evidence.append(f"SKU {line.sku} on line {line.line_no} is discontinued")
        short = _shortage(ctx, line) if keyword and _empty(line.original_sku) else None
        if short:
            evidence += [
                f"the customer note asks for a substitute ({keyword!r}): {ctx.order.customer_note!r}",
                short[2],
                f"line {line.line_no} is not yet substituted",
            ]
        if evidence:
            out.append(
                _line_hit(
                    "SUBSTITUTION_REQUEST",
                    ctx,
                    line,
                    evidence,
                    {
                        "discontinued": bool(item and item.status == "discontinued"),
                        "note_keyword": keyword if short else None,
                        "open_qty": line.open_qty,
                        "available": short[1] if short else None,
                    },
                )
            )
    return out


def _carrier(ctx: OrderContext, policy: Policy) -> list[Detected]:
    promised = ctx.order.promised_date
    out = []
    for s in ctx.shipments:
        if s.status == "delivered":
            continue
        reasons = []
        if s.carrier_status == "disrupted":
            reasons.append(f"carrier {s.carrier_id} of shipment {s.shipment_id} is disrupted")
        if s.status == "delayed":
            reasons.append(f"shipment {s.shipment_id} is delayed")
        if s.eta and promised and s.eta > promised:
            reasons.append(f"shipment {s.shipment_id} eta {s.eta} is after promised date {promised}")
        if reasons:
            out.append(
                Detected(
                    type="CARRIER_DISRUPTION",
                    instance_key=f"shipment:{s.shipment_id}",
                    shipment_id=s.shipment_id,
                    evidence=(f"shipment {s.shipment_id} is {s.status}, not delivered", *reasons),
                    facts={
                        "shipment_id": s.shipment_id,
                        "carrier_id": s.carrier_id,
                        "carrier_status": s.carrier_status,
                        "status": s.status,
                        "eta": _iso(s.eta),
                        "promised_date": _iso(promised),
                    },
                )
            )
    return out


def _procurement(ctx: OrderContext, policy: Policy) -> list[Detected]:
    promised = ctx.order.promised_date
    out = []
    for line in ctx.active_lines:
        wh, sku = ctx.ship_from(line), line.sku
        if line.backorder_qty <= 0 or sku is None or _empty(sku) or wh is None:
            continue
        pos = ctx.open_pos.get((sku, wh), ())
        first = pos[0] if pos else None
        earliest = (
            f"the earliest open purchase order {first.po_id} for SKU {line.sku} at {wh}" if first else ""
        )
        if first is None:
            why = f"there is no open purchase order for SKU {line.sku} at {wh}"
        elif first.expected_date is None:
            why = f"{earliest} has no expected date"
        elif promised is not None and first.expected_date > promised:
            why = f"{earliest} is expected {first.expected_date}, after promised date {promised}"
        else:
            continue
        evidence = [f"line {line.line_no} has backorder qty {line.backorder_qty}", why]
        out.append(
            _line_hit(
                "PROCUREMENT_DELAY",
                ctx,
                line,
                evidence,
                {
                    "backorder_qty": line.backorder_qty,
                    "warehouse_id": wh,
                    "po_id": first.po_id if first else None,
                    "expected_date": _iso(first.expected_date if first else None),
                    "promised_date": _iso(promised),
                },
            )
        )
    return out


def _master_data(ctx: OrderContext, policy: Policy) -> list[Detected]:
    empty = rules.empty_ship_to(ctx.order)
    if not empty:
        return []
    evidence = tuple(f"{name} of order {ctx.order.order_id} is empty" for name in empty)
    return [
        Detected(
            type="MASTER_DATA_INCOMPLETE",
            instance_key="order",
            evidence=evidence,
            facts={"empty_fields": empty},
        )
    ]


def _compliance(ctx: OrderContext, policy: Policy) -> list[Detected]:
    dest = rules.country(ctx.order.ship_to_country)
    out = []
    for line in ctx.active_lines:
        if not export_hold(ctx, line):
            continue
        wh, origin = ctx.ship_from(line), rules.country(ctx.origin_country(line))
        evidence = [
            f"SKU {line.sku} on line {line.line_no} is export-controlled",
            f"it ships from {wh} in {origin} to {dest}",
            f"customer {ctx.order.customer_id} has no export license",
        ]
        out.append(
            _line_hit(
                "COMPLIANCE_HOLD",
                ctx,
                line,
                evidence,
                {"warehouse_id": wh, "origin_country": origin, "ship_to_country": dest},
            )
        )
    return out


def export_hold(ctx: OrderContext, line: LineRec) -> bool:
    """Whether the line holds the order for export control (:func:`tools.rules.export_hold`)."""
    item = ctx.items.get(line.sku or "")
    return rules.export_hold(
        export_controlled=item is not None and item.export_controlled,
        export_license=ctx.customer.export_license if ctx.customer else None,
        ship_to_country=ctx.order.ship_to_country,
        origin_country=ctx.origin_country(line),
    )


def _allocation_conflict(ctx: OrderContext, policy: Policy) -> list[Detected]:
    """§6: a short line that neither another warehouse nor an approved substitute can serve, whose
    stock lower-priority orders hold at its warehouse: available + their allocated_qty ≥ open qty."""
    o, c = ctx.order, ctx.customer
    if c is None:
        return []
    warehouses = {w.warehouse_id: (w.region, w.country) for w in ctx.warehouses.values()}
    out = []
    for line in ctx.active_lines:
        gap = _shortage(ctx, line)
        if gap is None or line.sku is None:
            continue
        wh, available, fact = gap
        donors = donors_for(ctx.donors.get((line.sku, wh), ()), o.order_id, ctx.priority)
        take = reassignment(donors, line.open_qty, available)
        if take is None:
            continue
        item = ctx.items.get(line.sku or "")
        move, _ = reallocation_choice(
            sku=line.sku,
            qty=line.qty,
            here=wh,
            warehouses=warehouses,
            available=ctx.available,
            export_controlled=bool(item and item.export_controlled),
            export_license=c.export_license,
            ship_to_country=o.ship_to_country,
        )
        subs = [
            (x.substitute_sku, x.approved, ctx.items[x.substitute_sku].list_price)
            for x in ctx.substitutes.get(line.sku or "", ())
        ]
        swap = (
            c.allow_substitutions
            and _empty(line.original_sku)
            and substitute_choice(
                substitutes=subs,
                need=line.open_qty,
                unit_price=line.unit_price,
                available=functools.partial(ctx.available, warehouse_id=wh),
            )
        )
        if move is not None or swap:
            continue
        donor, qty = take
        held = sum(d.allocated_qty for d in donors)
        evidence = [
            fact,
            f"no other warehouse has the line's qty {line.qty} of {line.sku}"
            + (" and no approved substitute has the open qty in stock" if c.allow_substitutions else "")
            + (
                f" (customer {c.customer_id} does not allow substitutions)"
                if not c.allow_substitutions
                else ""
            ),
            f"orders of lower priority than {o.order_id} ({c.tier or 'no tier'}, promised "
            f"{_iso(o.promised_date)}) hold {held} of {line.sku} at {wh}: available {available} + {held} "
            f"≥ open qty {line.open_qty}",
            *(
                f"donor: line {d.line_no} of {d.order_id} ({d.tier or 'no tier'} customer {d.customer_id}, "
                f"promised {_iso(d.promised_date)}) holds {d.allocated_qty}"
                for d in donors
            ),
        ]
        out.append(
            _line_hit(
                "ALLOCATION_CONFLICT",
                ctx,
                line,
                evidence,
                {
                    "open_qty": line.open_qty,
                    "available": available,
                    "shortfall": line.open_qty - available,
                    "warehouse_id": wh,
                    "tier": c.tier,
                    "promised_date": _iso(o.promised_date),
                    "donors": [d.as_fact() for d in donors],
                    "reassign": {"donor": donor.as_fact(), "qty": qty},
                },
            )
        )
    return out


Rule = Callable[[OrderContext, Policy], list[Detected]]
RULES: dict[str, Rule] = {
    "CREDIT_HOLD": _credit_hold,
    "PRICING_DISCREPANCY": _pricing,
    "INVENTORY_SHORTFALL": _inventory,
    "SUBSTITUTION_REQUEST": _substitution,
    "CARRIER_DISRUPTION": _carrier,
    "PROCUREMENT_DELAY": _procurement,
    "MASTER_DATA_INCOMPLETE": _master_data,
    "COMPLIANCE_HOLD": _compliance,
    "ALLOCATION_CONFLICT": _allocation_conflict,
}


def _patterns(c: OrderContext, hits: list[Detected]) -> set[tuple[str, str, str]]:
    """The (type, "customer"|"sku", value) keys a set of base hits can recur under."""
    keys = {(d.type, "customer", c.order.customer_id) for d in hits if c.order.customer_id}
    return keys | {(d.type, "sku", d.sku) for d in hits if d.sku}


def _in_window(day: dt.date, other: OrderRec, window_days: int) -> bool:
    return (
        other.status in RECURRENCE_STATUSES
        and other.order_date is not None
        and 0 <= (day - other.order_date).days <= window_days
    )


def _recurring(
    ctx: OrderContext,
    found: list[Detected],
    policy: Policy,
    base_of: Callable[[OrderContext], list[Detected]] | None = None,
) -> list[Detected]:
    """RECURRING_ANOMALY: a (type, sku) or (type, customer) of this order on min_orders orders.

    ``base_of``: every base hit of a neighbour, when the caller keeps them (:func:`detect_many`)."""
    rule, day = policy.thresholds.recurrence, ctx.order.order_date
    if not found or day is None:
        return []
    orders: dict[tuple[str, str, str], dict[str, dt.date]] = {
        key: {ctx.order.order_id: day} for key in _patterns(ctx, found)
    }
    types = sorted({d.type for d in found})
    for n in ctx.neighbours:
        other = n.order
        if (
            other.order_id == ctx.order.order_id
            or other.order_date is None
            or not _in_window(day, other, rule.window_days)
        ):
            continue
        hits = _base(n, policy, types) if base_of is None else [d for d in base_of(n) if d.type in types]
        for key in _patterns(n, hits) & orders.keys():
            orders[key][other.order_id] = other.order_date
    return _recurrence_findings(day, orders, policy)


def _recurrence_findings(
    day: dt.date, orders: dict[tuple[str, str, str], dict[str, dt.date]], policy: Policy
) -> list[Detected]:
    rule = policy.thresholds.recurrence
    out = []
    for (kind, by, value), hits in sorted(orders.items()):
        if len(hits) < rule.min_orders:
            continue
        listed = ", ".join(f"{oid} ({when})" for when, oid in sorted((d, o) for o, d in hits.items()))
        subject = f"SKU {value}" if by == "sku" else f"customer {value}"
        evidence = (
            f"{kind} holds for {subject} on {len(hits)} orders dated within {rule.window_days} days "
            f"up to {day} (threshold {rule.min_orders}): {listed}",
        )
        out.append(
            Detected(
                type="RECURRING_ANOMALY",
                instance_key=f"{by}:{value}:{kind}",
                sku=value if by == "sku" else None,
                evidence=evidence,
                facts={
                    "pattern_type": kind,
                    "by": by,
                    ("customer_id" if by == "customer" else "sku"): value,
                    "order_ids": sorted(hits),
                    "window_days": rule.window_days,
                    "min_orders": rule.min_orders,
                },
            )
        )
    return out


def iter_open_book(
    session: Session, policy: Policy, *, chunk: int = 2_000, only: Iterable[str] | None = None
) -> Iterator[list[tuple[OrderContext, list[Detected]]]]:
    """The open book (open, held or released orders) in batches of (context, detections), each
    order's detections the same as :func:`detect_order`'s; contexts without neighbours.

    One pass, each order loaded once (:func:`load_contexts`, about ``chunk`` orders a batch): orders
    go by (order_date, order_id), and a batch always ends with the last order of a day. Recurrence
    looks back ``window_days`` days from an order's date to the same day, so when a batch is loaded
    every order that can recur with its orders has been: recurrence is counted from an index of
    (type, customer|sku) -> orders whose base rules hold, pruned to the window. Memory is bounded by
    a batch (at least one day's orders) plus the index of the window. Orders without an order_date
    come first (they neither recur nor count).

    With ``only``, batches hold just those orders (the others are still loaded to count
    recurrence), and the pass stops after the last day one of them is dated.
    """
    o = Order.__table__
    rows = session.execute(
        select(o.c.order_id, o.c.order_date).where(o.c.status.in_(RECURRENCE_STATUSES))
    ).all()
    book: list[tuple[str, dt.date | None]] = [
        (oid, d) for oid, d in sorted(rows, key=lambda r: (r[1] is not None, r[1] or dt.date.min, r[0]))
    ]
    wanted = None if only is None else set(only)
    if wanted is not None:
        dated = [d for oid, d in book if oid in wanted]
        if not dated:
            return
        last = max(dated, key=lambda d: (d is not None, d or dt.date.min))
        book = [
            (oid, d)
            for oid, d in book
            if (d is not None, d or dt.date.min) <= (last is not None, last or dt.date.min)
        ]
    rule = policy.thresholds.recurrence
    priority = policy.decision_order.rank()
    index: dict[tuple[str, str, str], list[tuple[str, OrderRec]]] = {}
    i = 0
    while i < len(book):
        j = min(i + chunk, len(book))
        while j < len(book) and book[j][1] == book[j - 1][1]:
            j += 1  # never split a day: its orders count each other
        contexts = load_contexts(session, [oid for oid, _ in book[i:j]])
        batch = []
        for oid, _ in book[i:j]:
            ctx = contexts.get(oid)
            if ctx is None:  # gone since the book was listed
                continue
            hits = _base(ctx, policy, RULES)
            keys = _patterns(ctx, hits)
            for key in keys:
                index.setdefault(key, []).append((oid, ctx.order))
            batch.append((ctx, hits, keys))
        out = []
        for ctx, hits, keys in batch:
            if wanted is not None and ctx.order.order_id not in wanted:
                continue
            found, day = list(hits), ctx.order.order_date
            if hits and day is not None:
                orders = {
                    key: {
                        m: rec.order_date
                        for m, rec in index[key]
                        if rec.order_date is not None
                        and (m == ctx.order.order_id or _in_window(day, rec, rule.window_days))
                    }
                    for key in keys
                }
                found += _recurrence_findings(day, orders, policy)
            out.append((ctx, _ordered(found, priority)))
        next_day = book[j][1] if j < len(book) else None
        if next_day is not None:  # forget what the next days can no longer count
            horizon = rules.days_from(next_day, -rule.window_days)
            for key in list(index):
                kept = [
                    (m, rec)
                    for m, rec in index[key]
                    if rec.order_date is not None and rec.order_date >= horizon
                ]
                if kept:
                    index[key] = kept
                else:
                    del index[key]
        if out:
            yield out
        i = j


def detect_open_book(session: Session, policy: Policy, *, chunk: int = 2_000) -> dict[str, list[Detected]]:
    """Every open, held or released order's exceptions, the same as :func:`detect_order` on each,
    by order id. One pass over the book (:func:`iter_open_book`): each order is loaded once, the
    base rules run once per order, and recurrence is counted from an index.
    """
    book = {
        ctx.order.order_id: found
        for batch in iter_open_book(session, policy, chunk=chunk)
        for ctx, found in batch
    }
    return {oid: book[oid] for oid in sorted(book)}
